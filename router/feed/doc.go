// Package feed owns the portal feed. The Gate is the one function that
// writes it (portal.hl7.<partition>, portal.fhir.<partition>, and the test
// feed test.portal.> for MSH-11 T and D): every release, held or immediate,
// every retraction of a released result, with the release headers; it moves
// a held record to released by compare-and-set first, so a result is
// released once, and its reconciler republishes what a failure left
// unpublished. fhir.go is the one FHIR encoder and the one release-path →
// Provenance-reason mapping; retraction.go synthesises the withdrawal that
// takes a released version back; releases.go lists what went out.
//
// It may import router/store, router/holdview, router/audit, router/dead,
// router/bus, router/hold, fhirmap, hl7 and policy; never the pipeline.
package feed
