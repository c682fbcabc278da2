package feed

import (
	"fmt"
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

// NewFHIREncoder returns the portal feed's FHIR encoder (fhirmap.Bundle) with
// the default Patient (PID-3 identifiers with default systems, the keyed
// hash, name, birth date and sex): NewFHIREncoderOptions with Location loc,
// IDPrefix idPrefix and Validate validate.
func NewFHIREncoder(loc *time.Location, idPrefix string, validate bool) FHIREncoder {
	return func(m *hl7.Message, holdID string, rel hold.ReleaseInfo, bases []hold.Basis, patientKey string) ([]byte, error) {
		return encodeFHIR(fhirmap.Options{Location: loc, IDPrefix: idPrefix, Validate: validate}, m, holdID, rel, bases, patientKey)
	}
}

// NewFHIREncoderOptions returns the portal feed's FHIR encoder
// (fhirmap.Bundle), the one used in production and in tests. opts are the
// deployment's mapping options (time zone, id prefix, validation, and what the
// Patient resource carries: config fhir.patient and fhir.identifier_systems);
// its PatientRef is set per result to "Patient/<patient key>", the id of the
// Bundle's Patient: no MRN or name in the Bundle's references. A result
// without a patient key has no valid reference, so fhirmap refuses it and the
// release is recorded as unpublishable rather than sent to nobody. Options
// fhirmap would refuse (an identifier system that is not an absolute URI, an
// unknown Patient detail) are an error here, at start, rather than on every
// release.
func NewFHIREncoderOptions(opts fhirmap.Options) (FHIREncoder, error) {
	probe := opts
	probe.PatientRef = "Patient/probe"
	if err := fhirmap.CheckOptions(probe); err != nil {
		return nil, fmt.Errorf("FHIR mapping options: %w", err)
	}
	return func(m *hl7.Message, holdID string, rel hold.ReleaseInfo, bases []hold.Basis, patientKey string) ([]byte, error) {
		return encodeFHIR(opts, m, holdID, rel, bases, patientKey)
	}, nil
}

// encodeFHIR maps one release with opts, the Patient named by patientKey.
func encodeFHIR(opts fhirmap.Options, m *hl7.Message, holdID string, rel hold.ReleaseInfo, bases []hold.Basis, patientKey string) ([]byte, error) {
	kinds := make([]string, 0, len(bases))
	for _, b := range bases {
		kinds = append(kinds, b.Kind)
	}
	opts.PatientRef = "Patient/" + patientKey
	return fhirmap.Bundle(m, fhirmap.Release{
		HoldID: holdID, Reason: FHIRReason(rel.Path), Actor: rel.Actor, ActorRole: rel.Role,
		Note: rel.Note, At: rel.At, Bases: kinds, Notify: string(rel.Notify),
	}, opts)
}
