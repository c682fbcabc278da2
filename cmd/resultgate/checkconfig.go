package main

import (
	"fmt"

	"github.com/resultgate/resultgate/router/pipeline"

	"github.com/spf13/cobra"

	"github.com/resultgate/resultgate/app"
	"github.com/resultgate/resultgate/config"
	"github.com/resultgate/resultgate/forwarder"
)

func newCheckConfigCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "check-config FILE",
		Short: "Check a configuration file and report every problem by key",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadAll(args[0])
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			_ = cfg
			fmt.Fprintf(cmd.OutOrStdout(), "%s: OK\n", args[0])
			return nil
		},
	}
}

// loadAll loads the file at path (defaults when empty), decodes every section and
// validates the whole.
func loadAll(path string) (config.Config, error) {
	cfg := config.Default()
	if path != "" {
		var err error
		if cfg, err = config.Load(path); err != nil {
			return cfg, err
		}
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("invalid configuration:\n%w", err)
	}
	// The sections owned by other packages: decoded strictly and validated by
	// the same code serve uses.
	if _, err := app.LoadPolicy(cfg); err != nil {
		return cfg, fmt.Errorf("invalid configuration:\n%w", err)
	}
	if _, err := pipeline.LoadHoldsConfig(cfg); err != nil {
		return cfg, fmt.Errorf("invalid configuration:\n%w", err)
	}
	if _, err := app.AuthConfig(cfg); err != nil {
		return cfg, fmt.Errorf("invalid configuration:\n%w", err)
	}
	if _, err := forwarder.LoadConfig(cfg); err != nil {
		return cfg, fmt.Errorf("invalid configuration:\n%w", err)
	}
	return cfg, nil
}
