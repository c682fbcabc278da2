package pipeline

import (
	"fmt"
	"time"

	"github.com/resultgate/resultgate/fhirmap"
	"github.com/resultgate/resultgate/hl7"
	"github.com/resultgate/resultgate/policy"
	"github.com/resultgate/resultgate/router/hold"
)

// policyAdapter is the production Policy: the policy package's FromHL7,
// Classifier and Engine.
type policyAdapter struct {
	cls *policy.Classifier
	eng *policy.Engine
	loc *time.Location
}

// NewPolicy returns the Policy backed by the policy package. loc is the zone
// of HL7 timestamps without an offset (nil: UTC).
func NewPolicy(cls *policy.Classifier, eng *policy.Engine, loc *time.Location) Policy {
	return &policyAdapter{cls: cls, eng: eng, loc: loc}
}

// NewDefaultPolicy compiles the bundled rule set and builds an engine from
// cfg.
func NewDefaultPolicy(cfg policy.Config) (Policy, error) {
	cls, err := policy.NewClassifier(policy.DefaultRuleSet())
	if err != nil {
		return nil, fmt.Errorf("compiling the default rule set: %w", err)
	}
	eng, err := policy.NewEngine(cfg)
	if err != nil {
		return nil, fmt.Errorf("policy engine: %w", err)
	}
	return NewPolicy(cls, eng, eng.Calendar().Location()), nil
}

func (p *policyAdapter) Report(m *hl7.Message) (*policy.Report, error) {
	return policy.FromHL7(m, p.loc)
}

func (p *policyAdapter) ReportPooled(m *hl7.Message) (*policy.Report, func(), error) {
	return policy.FromHL7Pooled(m, p.loc)
}

func (p *policyAdapter) ClassifyPooled(r *policy.Report, h policy.History) (policy.Classification, func()) {
	return p.cls.ClassifyPooled(r, h)
}

func (p *policyAdapter) Classify(r *policy.Report, h policy.History) policy.Classification {
	return p.cls.Classify(r, h)
}

func (p *policyAdapter) Decide(in policy.Input) policy.Decision { return p.eng.Decide(in) }

func (p *policyAdapter) ParseConsent(data []byte) (*policy.Preference, error) {
	return policy.ParseConsent(data)
}

// fhirReason maps a release path to the Provenance reason of the Bundle.
func fhirReason(p hold.ReleasePath) string {
	switch p {
	case hold.PathImmediate:
		return fhirmap.ReasonImmediate
	case hold.PathOverride:
		return fhirmap.ReasonOnCallOverride
	case hold.PathDeadline:
		return fhirmap.ReasonDeadline
	case hold.PathPatientRevoked:
		return fhirmap.ReasonPatientRevoked
	case hold.PathCorrection:
		return fhirmap.ReasonCorrection
	default: // acknowledged, reevaluated after a clinician's action
		return fhirmap.ReasonClinicianRelease
	}
}

// NewFHIREncoder returns the FHIREncoder backed by fhirmap.Bundle. The Patient
// reference is "Patient/<patient key>": no MRN or name in the Bundle's
// references. loc is the zone of HL7 timestamps without an offset.
func NewFHIREncoder(loc *time.Location, idPrefix string) FHIREncoder {
	return func(m *hl7.Message, holdID string, rel hold.ReleaseInfo, bases []hold.Basis, patientKey string) ([]byte, error) {
		kinds := make([]string, 0, len(bases))
		for _, b := range bases {
			kinds = append(kinds, b.Kind)
		}
		if patientKey == "" {
			patientKey = "unknown"
		}
		return fhirmap.Bundle(m, fhirmap.Release{
			HoldID: holdID, Reason: fhirReason(rel.Path), Actor: rel.Actor, ActorRole: rel.Role,
			Note: rel.Note, At: rel.At, Bases: kinds, Notify: string(rel.Notify),
		}, fhirmap.Options{PatientRef: "Patient/" + patientKey, Location: loc, IDPrefix: idPrefix})
	}
}
