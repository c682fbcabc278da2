package app

import (
	"fmt"
	"time"

	"github.com/resultgate/resultgate/config"
	"github.com/resultgate/resultgate/fhirmap"
	"github.com/resultgate/resultgate/hl7"
	"github.com/resultgate/resultgate/policy"
	"github.com/resultgate/resultgate/router"
)

// Policy is the production router.Policy: the rule-set classifier and the
// decision engine of package policy, configured from the `policy:` and `rules:`
// sections.
type Policy struct {
	cls *policy.Classifier
	eng *policy.Engine
	loc *time.Location
}

var (
	_ router.Policy       = (*Policy)(nil)
	_ router.PooledPolicy = (*Policy)(nil)
)

// PolicyParts decodes cfg's `policy:` section and builds the rule set from the
// embedded default extended by the `rules:` section.
func PolicyParts(cfg config.Config) (policy.Config, *policy.RuleSet, error) {
	var pc policy.Config
	if err := cfg.Section("policy", &pc); err != nil {
		return pc, nil, err
	}
	if err := pc.Validate(); err != nil {
		return pc, nil, err
	}
	var ext policy.RuleSetExtension
	if err := cfg.Section("rules", &ext); err != nil {
		return pc, nil, err
	}
	rs, err := policy.DefaultRuleSet().Extend(ext)
	if err != nil {
		return pc, nil, fmt.Errorf("rules: %w", err)
	}
	return pc, rs, nil
}

// LoadPolicy builds the policy from cfg's `policy:` and `rules:` sections.
func LoadPolicy(cfg config.Config) (*Policy, error) {
	pc, rs, err := PolicyParts(cfg)
	if err != nil {
		return nil, err
	}
	eng, err := policy.NewEngine(pc)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	cls, err := policy.NewClassifier(rs)
	if err != nil {
		return nil, fmt.Errorf("rules: %w", err)
	}
	return &Policy{cls: cls, eng: eng, loc: eng.Calendar().Location()}, nil
}

// Report builds the policy's view of m, with the jurisdiction of its sending
// facility.
func (p *Policy) Report(m *hl7.Message) (*policy.Report, error) {
	r, err := policy.FromHL7(m, p.loc)
	if err != nil {
		return nil, err
	}
	r.Jurisdiction = p.eng.JurisdictionFor(r, m.MSH().SendingFacility.NamespaceID)
	return r, nil
}

// ReportPooled is Report in pooled memory (router.PooledReporter): release
// hands it back once the classify step is done with the message.
func (p *Policy) ReportPooled(m *hl7.Message) (*policy.Report, func(), error) {
	r, release, err := policy.FromHL7Pooled(m, p.loc)
	if err != nil {
		return nil, nil, err
	}
	r.Jurisdiction = p.eng.JurisdictionFor(r, m.MSH().SendingFacility.NamespaceID)
	return r, release, nil
}

// ClassifyPooled is Classify with the result in pooled memory
// (router.PooledPolicy).
func (p *Policy) ClassifyPooled(r *policy.Report, h policy.History) (policy.Classification, func()) {
	return p.cls.ClassifyPooled(r, h)
}

// Classify tags r; h answers whether the patient has a malignancy on record.
func (p *Policy) Classify(r *policy.Report, h policy.History) policy.Classification {
	return p.cls.Classify(r, h)
}

// Decide returns the release decision.
func (p *Policy) Decide(in policy.Input) policy.Decision { return p.eng.Decide(in) }

// ParseConsent reads a FHIR R4 Consent.
func (p *Policy) ParseConsent(data []byte) (*policy.Preference, error) {
	return policy.ParseConsent(data)
}

// fhirEncoder returns the portal feed's FHIR encoder (fhirmap.Bundle);
// validate is config fhir.validate (full runtime validation, opt-in).
func fhirEncoder(loc *time.Location, validate bool) router.FHIREncoder {
	return func(m *hl7.Message, holdID string, rel router.ReleaseInfo, bases []router.Basis, patientKey string) ([]byte, error) {
		kinds := make([]string, 0, len(bases))
		for _, b := range bases {
			kinds = append(kinds, b.Kind)
		}
		return fhirmap.Bundle(m, fhirmap.Release{
			HoldID: holdID, Reason: fhirReason(rel.Path), Actor: rel.Actor, ActorRole: rel.Role,
			Note: rel.Note, At: rel.At, Bases: kinds, Notify: string(rel.Notify),
		}, fhirmap.Options{PatientRef: "Patient/" + patientKey, Location: loc, Validate: validate})
	}
}

// fhirReason maps a release path to the Provenance reason of the feed.
func fhirReason(p router.ReleasePath) string {
	switch p {
	case router.PathAcknowledged:
		return fhirmap.ReasonClinicianRelease
	case router.PathOverride:
		return fhirmap.ReasonOnCallOverride
	case router.PathDeadline:
		return fhirmap.ReasonDeadline
	case router.PathPatientRevoked, router.PathReevaluated:
		return fhirmap.ReasonPatientRevoked
	case router.PathCorrection:
		return fhirmap.ReasonCorrection
	default:
		return fhirmap.ReasonImmediate
	}
}
