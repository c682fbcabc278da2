package pipeline

import (
	"fmt"
	"time"

	"github.com/resultgate/resultgate/hl7"
	"github.com/resultgate/resultgate/policy"
)

// PolicyAdapter is the one production Policy, used by serve and by the tests
// alike: the policy package's FromHL7 (with the jurisdiction of the sending
// facility), Classifier and Engine.
type PolicyAdapter struct {
	cls *policy.Classifier
	eng *policy.Engine
	loc *time.Location
}

var (
	_ Policy       = (*PolicyAdapter)(nil)
	_ PooledPolicy = (*PolicyAdapter)(nil)
)

// NewPolicy returns the Policy backed by the policy package. HL7 timestamps
// without an offset are read in the engine's zone (policy.time_zone).
func NewPolicy(cls *policy.Classifier, eng *policy.Engine) *PolicyAdapter {
	return &PolicyAdapter{cls: cls, eng: eng, loc: eng.Calendar().Location()}
}

// NewDefaultPolicy compiles the bundled rule set and builds an engine from
// cfg.
func NewDefaultPolicy(cfg policy.Config) (*PolicyAdapter, error) {
	return NewPolicyFromRules(cfg, policy.DefaultRuleSet())
}

// NewPolicyFromRules compiles rs and builds an engine from cfg.
func NewPolicyFromRules(cfg policy.Config, rs *policy.RuleSet) (*PolicyAdapter, error) {
	eng, err := policy.NewEngine(cfg)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	cls, err := policy.NewClassifier(rs)
	if err != nil {
		return nil, fmt.Errorf("rules: %w", err)
	}
	return NewPolicy(cls, eng), nil
}

// Location is the instance zone (policy.time_zone): HL7 timestamps without
// an offset from a facility without a zone of its own are read in it.
func (p *PolicyAdapter) Location() *time.Location { return p.loc }

// Report builds the policy's view of m, with the jurisdiction of its sending
// facility; timestamps without an offset are read in the facility's zone.
func (p *PolicyAdapter) Report(m *hl7.Message) (*policy.Report, error) {
	fac := m.MSH().SendingFacility.NamespaceID
	r, err := policy.FromHL7(m, p.eng.LocationFor(fac))
	if err != nil {
		return nil, err
	}
	r.Jurisdiction = p.eng.JurisdictionFor(r, fac)
	return r, nil
}

// ReportPooled is Report in pooled memory (PooledPolicy): release hands it
// back once the classify step is done with the message.
func (p *PolicyAdapter) ReportPooled(m *hl7.Message) (*policy.Report, func(), error) {
	fac := m.MSH().SendingFacility.NamespaceID
	r, release, err := policy.FromHL7Pooled(m, p.eng.LocationFor(fac))
	if err != nil {
		return nil, nil, err
	}
	r.Jurisdiction = p.eng.JurisdictionFor(r, fac)
	return r, release, nil
}

// ClassifyPooled is Classify with the result in pooled memory (PooledPolicy).
func (p *PolicyAdapter) ClassifyPooled(r *policy.Report, h policy.History) (policy.Classification, func()) {
	return p.cls.ClassifyPooled(r, h)
}

// Classify tags r; h answers whether the patient has a malignancy on record.
func (p *PolicyAdapter) Classify(r *policy.Report, h policy.History) policy.Classification {
	return p.cls.Classify(r, h)
}

// Decide returns the release decision.
func (p *PolicyAdapter) Decide(in policy.Input) policy.Decision { return p.eng.Decide(in) }

// ParseConsent reads a FHIR R4 Consent.
func (p *PolicyAdapter) ParseConsent(data []byte) (*policy.Preference, error) {
	return policy.ParseConsent(data)
}

// DeterminationReview is the review period of a clinician determination
// placed without a review date (policy.clinician_determination.default_review).
func (p *PolicyAdapter) DeterminationReview() time.Duration {
	if d := p.eng.Config().ClinicianDetermination.DefaultReview.D(); d > 0 {
		return d
	}
	return policy.DefaultDeterminationReview
}
