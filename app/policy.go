package app

import (
	"fmt"

	"github.com/resultgate/resultgate/router/pipeline"

	"github.com/resultgate/resultgate/config"
	"github.com/resultgate/resultgate/policy"
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

// LoadPolicy builds the pipeline's policy (pipeline.PolicyAdapter, the one
// adapter) from cfg's `policy:` and `rules:` sections.
func LoadPolicy(cfg config.Config) (*pipeline.PolicyAdapter, error) {
	pc, rs, err := PolicyParts(cfg)
	if err != nil {
		return nil, err
	}
	return pipeline.NewPolicyFromRules(pc, rs)
}
