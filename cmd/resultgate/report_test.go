package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/resultgate/resultgate/app"
	"github.com/resultgate/resultgate/auth"
	"github.com/resultgate/resultgate/config"
	"github.com/resultgate/resultgate/internal/testutil"
	"github.com/resultgate/resultgate/report"
)

// runReport runs the report subcommand in-process.
func runReport(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newReportCmd()
	var out, errb bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	cmd.SetArgs(args)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err := cmd.ExecuteContext(ctx)
	return out.String(), err
}

// TestReportCLI runs `resultgate report` against a running resultgate's HTTP
// API (the store is the server's; the CLI never opens it).
func TestReportCLI(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Durability = config.DurabilityOS
	cfg.MLLP.Addr, cfg.HTTP.Addr, cfg.NATS.Listen = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:-1"
	tokens := filepath.Join(cfg.DataDir, "tokens.yaml")
	comp, err := auth.NewToken(tokens, "Compliance Office", auth.RoleCompliance, "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	clin, err := auth.NewToken(tokens, "Dr Delta", auth.RoleClinician, "D001", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	a := app.New(cfg, zerolog.Nop())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer a.Stop(ctx)
	api := "http://" + a.HTTPAddr().String()

	// One result decided, so the report has a denominator.
	fixture := filepath.Join(testutil.RepoRoot(t), "testdata", "hl7", "oru_r01_v251.hl7")
	if out, _, err := runCLI(t, "", "send", "--addr", a.MLLPAddr().String(), fixture); err != nil {
		t.Fatalf("send: %v %s", err, out)
	}
	testutil.Eventually(t, 15*time.Second, "one result in the report", func() bool {
		out, err := runReport(t, "--api", api, "--token", comp, "--json")
		var r report.Report
		return err == nil && json.Unmarshal([]byte(out), &r) == nil && r.Totals.Results != nil && *r.Totals.Results == 1
	})

	text, err := runReport(t, "--api", api, "--token", comp, "--since", "2026-01-01")
	if err != nil {
		t.Fatalf("text: %v", err)
	}
	for _, want := range []string{"resultgate compliance report", "Period:", "2026-01-01T00:00:00Z", "Results decided:", "Holds by basis", "Time to release", "How holds ended", "Consistency by patient group"} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q:\n%s", want, text)
		}
	}
	csv, err := runReport(t, "--api", api+"/", "--token", comp, "--csv", "--since", "2026-01-01T00:00:00Z", "--until", "2099-12-31")
	if err != nil || !strings.HasPrefix(csv, "section,since,until,generated_at,min_cell\nperiod,2026-01-01T00:00:00Z,2100-01-01T00:00:00Z,") {
		t.Errorf("csv: %v %.300s", err, csv)
	}

	// The token may come from the environment.
	t.Setenv("RESULTGATE_TOKEN", comp)
	if _, err := runReport(t, "--api", api, "--json"); err != nil {
		t.Errorf("token from RESULTGATE_TOKEN: %v", err)
	}
	t.Setenv("RESULTGATE_TOKEN", "")

	tests := []struct {
		name     string
		args     []string
		exit     int
		contains string
	}{
		{"clinician refused", []string{"--api", api, "--token", clin}, 1, "403 Forbidden (forbidden: role clinician may not"},
		{"no token", []string{"--api", api}, 2, "no token"},
		{"json and csv", []string{"--api", api, "--token", comp, "--json", "--csv"}, 2, "exclude each other"},
		{"bad api", []string{"--api", "ftp://x", "--token", comp}, 2, "--api: want an http(s) URL"},
		{"bad since", []string{"--api", api, "--token", comp, "--since", "last week"}, 1, `since: want an RFC 3339 time (2026-12-07T08:00:00Z), a date (2026-12-07, UTC) or a duration ago (24h), got "last week"`},
		{"nobody listening", []string{"--api", "http://127.0.0.1:1", "--token", comp}, 1, "asking http://127.0.0.1:1/api/report"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := runReport(t, tt.args...)
			if exitCode(err) != tt.exit || err == nil || !strings.Contains(err.Error(), tt.contains) {
				t.Errorf("got exit %d, %v; want exit %d with %q", exitCode(err), err, tt.exit, tt.contains)
			}
		})
	}
}
