package app

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/resultgate/resultgate/router/pipeline"

	"github.com/resultgate/resultgate/auth"
	"github.com/resultgate/resultgate/config"
	"github.com/resultgate/resultgate/forwarder"
	"github.com/resultgate/resultgate/policy"
	"github.com/resultgate/resultgate/router/notify/deliver"
)

// Sections are the configuration sections owned by other packages
// (config.SectionNames), decoded over their defaults and validated.
type Sections struct {
	Policy    policy.Config
	Rules     *policy.RuleSet
	Holds     pipeline.HoldsConfig
	Forwarder forwarder.Config
	Auth      auth.Config
	Notify    deliver.Config
	// Warnings are problems that do not stop serve (e.g. a statute clock
	// counted in the instance's time zone because neither the rule nor the
	// facility names one), with their keys and lines.
	Warnings config.Problems
}

// sectionLoaders decode and validate each section of config.SectionNames into
// s: every name there has exactly one loader here (TestSectionLoaders).
var sectionLoaders = map[string]func(cfg config.Config, s *Sections) error{
	config.SectionPolicy: func(cfg config.Config, s *Sections) error {
		// Validate what could be decoded too: one run reports everything.
		err := errors.Join(cfg.Decode(config.SectionPolicy, &s.Policy), s.Policy.Validate())
		for _, w := range s.Policy.Warnings() {
			s.Warnings = append(s.Warnings, warning(cfg, w))
		}
		return err
	},
	config.SectionRules: func(cfg config.Config, s *Sections) error {
		var ext policy.RuleSetExtension
		if err := cfg.Decode(config.SectionRules, &ext); err != nil {
			return err
		}
		rs, err := policy.DefaultRuleSet().Extend(ext)
		if err != nil {
			return fmt.Errorf("rules: %w", err)
		}
		s.Rules = rs
		return nil
	},
	config.SectionHolds: func(cfg config.Config, s *Sections) error {
		s.Holds = pipeline.DefaultHoldsConfig()
		return errors.Join(cfg.Decode(config.SectionHolds, &s.Holds), s.Holds.Validate())
	},
	config.SectionForwarder: func(cfg config.Config, s *Sections) error {
		s.Forwarder = forwarder.DefaultConfig()
		derr := cfg.Decode(config.SectionForwarder, &s.Forwarder)
		s.Forwarder.PartitionCount = cfg.Intake.Partitions
		return errors.Join(derr, s.Forwarder.Validate())
	},
	config.SectionAuth: func(cfg config.Config, s *Sections) error {
		derr := cfg.Decode(config.SectionAuth, &s.Auth)
		if s.Auth.TokensFile == "" {
			s.Auth.TokensFile = filepath.Join(cfg.DataDir, "tokens.yaml")
		}
		return errors.Join(derr, s.Auth.Validate())
	},
	config.SectionNotify: func(cfg config.Config, s *Sections) error {
		s.Notify = deliver.DefaultConfig()
		derr := cfg.Decode(config.SectionNotify, &s.Notify)
		if s.Notify.PublicURL == "" && len(cfg.HTTP.PublicOrigins) > 0 {
			s.Notify.PublicURL = cfg.HTTP.PublicOrigins[0]
		}
		if s.Notify.Enabled() && s.Notify.PublicURL == "" {
			s.Warnings = append(s.Warnings, warning(cfg, "notify.public_url: not set, nor http.public_origins: notifications carry no link to the worklist"))
		}
		return errors.Join(derr, s.Notify.Validate())
	},
}

// warning turns a "key: message" warning into a located problem.
func warning(cfg config.Config, w string) *config.Problem {
	ps := cfg.Locate(errors.New(w))
	p := ps[0]
	p.Warning = true
	return p
}

// LoadSections decodes and validates every section of cfg owned by another
// package, and checks what spans sections (holds reminders against the
// longest hold). It returns every problem found, not only the first: serve
// refuses to start on any, and check-config lists them all with their lines.
func LoadSections(cfg config.Config) (Sections, error) {
	var s Sections
	var errs []error
	for _, name := range config.SectionNames {
		load, ok := sectionLoaders[name]
		if !ok {
			errs = append(errs, fmt.Errorf("config: section %q has no loader in app", name))
			continue
		}
		if err := load(cfg, &s); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		errs = append(errs, crossChecks(s))
	}
	return s, errors.Join(errs...)
}

// crossChecks are the checks that span sections.
func crossChecks(s Sections) error {
	maxHold := s.Policy.MaxHold.D()
	if maxHold == 0 {
		maxHold = policy.DefaultMaxHold
	}
	var errs []error
	for _, d := range []struct {
		key string
		v   time.Duration
	}{
		{"holds.reminder_before", s.Holds.ReminderBefore},
		{"holds.escalate_before", s.Holds.EscalateBefore},
	} {
		if d.v >= maxHold {
			errs = append(errs, fmt.Errorf("%s: must be shorter than the longest hold (policy.max_hold, %s), got %s: no hold is open that long before its deadline",
				d.key, policy.Duration(maxHold), config.FormatDuration(d.v)))
		}
	}
	return errors.Join(errs...)
}

// CheckFiles checks that every file the configuration names exists and is
// readable: those of the core sections (config.CheckFiles), the forwarder's
// TLS files, and the tokens file (which may be absent: `resultgate token new`
// creates it).
func CheckFiles(cfg config.Config, s Sections) config.Problems {
	out := cfg.CheckFiles()
	t := s.Forwarder.TLS
	if s.Forwarder.Enabled {
		if t.CAFile != "" {
			if p := config.CheckCAFile("forwarder.tls.ca_file", t.CAFile); p != nil {
				out = append(out, p)
			}
		}
		if t.CertFile != "" && t.KeyFile != "" {
			out = append(out, config.CheckKeyPair("forwarder.tls.cert_file", t.CertFile, "forwarder.tls.key_file", t.KeyFile)...)
		}
	}
	if path := s.Auth.TokensFile; path != "" {
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			var set auth.Config
			if cfg.Decode(config.SectionAuth, &set) == nil && set.TokensFile != "" {
				out = append(out, &config.Problem{Key: "auth.tokens_file", Warning: true,
					Msg: fmt.Sprintf("file %s does not exist yet: the API accepts no token until `resultgate token new` creates it", path)})
			}
		} else if p := config.CheckFile("auth.tokens_file", path); p != nil {
			out = append(out, p)
		} else if _, err := auth.ReadTokens(path); err != nil {
			out = append(out, &config.Problem{Key: "auth.tokens_file", Msg: err.Error()})
		}
	}
	for _, p := range out {
		if p.Line == 0 {
			p.Line = cfg.LineOf(p.Key)
		}
	}
	return out
}
