// Package fhirmap turns a released HL7 v2 result message (ORU^R01, or MDM with
// OBX document content) into the FHIR R4 Bundle that resultgate publishes on the
// portal feed (portal.fhir.<partition>).
//
// The mapping follows the HL7 Version 2 to FHIR implementation guide
// (http://hl7.org/fhir/uv/v2mappings, message map ORU_R01, segment maps
// OBR[DiagnosticReport] and OBX[Observation], concept maps ResultStatus and
// ObservationResultStatus), with the choices documented in docs/FHIR.md:
//
//   - one DiagnosticReport per OBR (or one per MDM document), its Observations
//     (one per OBX; consecutive narrative OBX lines with the same OBX-3/OBX-4 are
//     joined), a Patient reference supplied by the caller (never a Patient
//     resource: no name, no MRN), and one Provenance saying how, why, by whom and
//     when the result was released;
//   - a Bundle of type transaction whose entries are PUTs to stable, content-
//     derived ids, so re-publishing a result (a retry, a re-run after a crash, a
//     correction of the same order) updates the same resources instead of
//     creating duplicates.
//
// The mapping builds the Bundle as google/fhir/go's R4 protos and writes it
// with its own encoder (encode.go), which gives byte for byte what
// google/fhir/go's jsonformat marshaller gives, without reflection. The tests
// hold it to that for every golden, test and corpus message and in two fuzz
// targets, and parse every Bundle they produce back with google/fhir/go's
// validating unmarshaller (Validate). google/fhir/go stays the reference:
// with Options.Validate (config fhir.validate) Bundle runs that validating
// unmarshaller on its output at run time and returns ErrInvalidBundle instead
// of a Bundle that fails it.
//
// The protos of one Bundle come from slabs, a []T per kind of element, and
// Bundle reuses a builder's slabs from one call to the next through a
// sync.Pool (alloc.go), zeroing them before reuse: a warm Bundle allocates
// little more than its output. Nothing of the slabs is reachable from what
// Bundle returns.
//
// Bundle is a pure function of its arguments: no clock, no randomness, no I/O.
// The same message, release and options always produce the same bytes.
package fhirmap
