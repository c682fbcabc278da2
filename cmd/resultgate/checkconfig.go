package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/resultgate/resultgate/app"
	"github.com/resultgate/resultgate/config"
)

// maxConfigFile bounds the configuration file check-config reads.
const maxConfigFile = 4 << 20

func newCheckConfigCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "check-config FILE",
		Short: "Check a configuration file and report every problem by key and line",
		Long: `check-config reads a configuration file as serve would and reports every problem in
one run, each as FILE:LINE: key: message: unknown keys (with the key probably meant),
values of the wrong kind, durations outside their sane range, invalid settings in
every section, jurisdictions named without a rule, statute clocks that would be
counted in UTC, and files the configuration names (TLS certificates, keys and CA
bundles, NATS credentials, the partition key, the tokens file) that are missing or
unreadable. Warnings are printed too but do not fail the check. It exits 1 when
anything is wrong.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCheckConfig(cmd.OutOrStdout(), args[0])
		},
	}
}

func runCheckConfig(w io.Writer, path string) error {
	problems, err := checkConfigFile(path)
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	for _, p := range problems.Warnings() {
		fmt.Fprintf(w, "%s: warning: %s\n", located(path, p), problemText(p))
	}
	errs := problems.Errors()
	if len(errs) == 0 {
		fmt.Fprintf(w, "%s: OK\n", path)
		return nil
	}
	return &exitError{code: 1, err: fmt.Errorf("%s: %s:\n%s", path, plural(len(errs), "problem"), formatProblems(path, errs))}
}

// formatProblems lists problems one a line as FILE:LINE: key: message.
func formatProblems(path string, ps config.Problems) string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = located(path, p) + ": " + problemText(p)
	}
	return strings.Join(lines, "\n")
}

// configError formats the problems err holds with their file and lines.
func configError(cfg config.Config, path string, err error) error {
	ps := cfg.Locate(err)
	ps.Sort()
	return errors.New(formatProblems(path, ps))
}

// located is FILE:LINE, FILE for a key that is not in the file, or
// "configuration" without a file.
func located(path string, p *config.Problem) string {
	if path == "" {
		path = "configuration"
	}
	if p.Line > 0 {
		return fmt.Sprintf("%s:%d", path, p.Line)
	}
	return path
}

// problemText is "key: message" without the line.
func problemText(p *config.Problem) string {
	if p.Key == "" {
		return p.Msg
	}
	return p.Key + ": " + p.Msg
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// checkConfigFile reads the file at path and returns every problem in it,
// sorted by line. The error is for a file that cannot be read at all.
func checkConfigFile(path string) (config.Problems, error) {
	data, err := readBounded(path, maxConfigFile)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s: no such file", path)
		}
		return nil, err
	}
	cfg, perr := config.Parse(data)
	var all config.Problems
	all = append(all, cfg.Locate(perr)...)
	all = append(all, cfg.Locate(cfg.Validate())...)
	secs, serr := app.LoadSections(cfg)
	all = append(all, cfg.Locate(serr)...)
	all = append(all, secs.Warnings...)
	all = append(all, app.CheckFiles(cfg, secs)...)
	all.Sort()
	return all, nil
}

// loadAll loads the file at path (defaults when empty), decodes every section and
// validates the whole, reporting every problem with its line.
func loadAll(path string) (config.Config, error) {
	cfg := config.Default()
	if path != "" {
		data, err := readBounded(path, maxConfigFile)
		if err != nil {
			return cfg, err
		}
		if cfg, err = config.Parse(data); err != nil {
			return cfg, fmt.Errorf("invalid configuration:\n%w", configError(cfg, path, err))
		}
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("invalid configuration:\n%w", configError(cfg, path, err))
	}
	if _, err := app.LoadSections(cfg); err != nil {
		return cfg, fmt.Errorf("invalid configuration:\n%w", configError(cfg, path, err))
	}
	return cfg, nil
}
