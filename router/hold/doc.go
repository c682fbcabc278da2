// Package hold is resultgate's hold domain, shared by every stage (the
// pipeline, the stores, the API, the compliance report and the FHIR feed):
// the hold record and its states (held, released, superseded, withdrawn), the
// release paths and actor roles, the lawful bases as stored, clinicians'
// determinations (Preventing Harm, 45 CFR 171.201), and the opaque identifiers
// (hold IDs, keyed hashes of patients, orders and providers, partitions) that
// subjects, headers and logs carry instead of PHI.
//
// It is pure: no I/O, no NATS. It may import policy (the classifier's tags and
// bases) and the standard library only.
package hold
