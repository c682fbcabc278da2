package app

import (
	"errors"

	"github.com/resultgate/resultgate/router/pipeline"

	"github.com/resultgate/resultgate/config"
	"github.com/resultgate/resultgate/policy"
)

// PolicyParts decodes cfg's `policy:` section and builds the rule set from the
// embedded default extended by the `rules:` section, reporting every problem
// of both.
func PolicyParts(cfg config.Config) (policy.Config, *policy.RuleSet, error) {
	var s Sections
	err := errors.Join(sectionLoaders[config.SectionPolicy](cfg, &s), sectionLoaders[config.SectionRules](cfg, &s))
	return s.Policy, s.Rules, err
}

// newPolicy builds the pipeline's policy (pipeline.PolicyAdapter, the one
// adapter) from the decoded `policy:` and `rules:` sections.
func newPolicy(pc policy.Config, rs *policy.RuleSet) (*pipeline.PolicyAdapter, error) {
	return pipeline.NewPolicyFromRules(pc, rs)
}

// LoadPolicy builds the pipeline's policy from cfg's `policy:` and `rules:`
// sections.
func LoadPolicy(cfg config.Config) (*pipeline.PolicyAdapter, error) {
	pc, rs, err := PolicyParts(cfg)
	if err != nil {
		return nil, err
	}
	return newPolicy(pc, rs)
}
