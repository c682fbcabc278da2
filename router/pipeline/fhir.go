package pipeline

import (
	"time"

	"github.com/resultgate/resultgate/fhirmap"
	"github.com/resultgate/resultgate/hl7"
	"github.com/resultgate/resultgate/router/hold"
)

// FHIRReason maps a release path to the Provenance reason of the FHIR feed.
// It is the one place this mapping lives: a re-evaluation that ends a hold
// follows a clinician's action (a determination placed), so it reads as a
// clinician release, never as the patient revoking a request.
func FHIRReason(p hold.ReleasePath) string {
	switch p {
	case hold.PathImmediate:
		return fhirmap.ReasonImmediate
	case hold.PathOverride:
		return fhirmap.ReasonOnCallOverride
	case hold.PathDeadline:
		return fhirmap.ReasonDeadline
	case hold.PathPatientRevoked:
		return fhirmap.ReasonPatientRevoked
	case hold.PathPatientDelayEnded:
		return fhirmap.ReasonPatientDelay
	case hold.PathCorrection, hold.PathRetraction:
		return fhirmap.ReasonCorrection
	case hold.PathAcknowledged, hold.PathReevaluated:
		return fhirmap.ReasonClinicianRelease
	default:
		return fhirmap.ReasonImmediate
	}
}

// NewFHIREncoder returns the portal feed's FHIR encoder (fhirmap.Bundle), the
// one used in production and in tests. The Patient reference is
// "Patient/<patient key>": no MRN or name in the Bundle's references; a result
// without a patient key has no valid reference, so fhirmap refuses it and the
// release is recorded as unpublishable rather than sent to nobody. loc is the
// zone of HL7 timestamps without an offset; idPrefix is prepended to every
// resource id; validate turns on fhirmap's full runtime validation of every
// Bundle with google/fhir/go (config fhir.validate; its cost is in
// docs/BENCHMARKS.md).
func NewFHIREncoder(loc *time.Location, idPrefix string, validate bool) FHIREncoder {
	return func(m *hl7.Message, holdID string, rel hold.ReleaseInfo, bases []hold.Basis, patientKey string) ([]byte, error) {
		kinds := make([]string, 0, len(bases))
		for _, b := range bases {
			kinds = append(kinds, b.Kind)
		}
		return fhirmap.Bundle(m, fhirmap.Release{
			HoldID: holdID, Reason: FHIRReason(rel.Path), Actor: rel.Actor, ActorRole: rel.Role,
			Note: rel.Note, At: rel.At, Bases: kinds, Notify: string(rel.Notify),
		}, fhirmap.Options{PatientRef: "Patient/" + patientKey, Location: loc, IDPrefix: idPrefix, Validate: validate})
	}
}
