package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/resultgate/resultgate/app"
	"github.com/resultgate/resultgate/config"
	"github.com/resultgate/resultgate/internal/testutil"
	"github.com/resultgate/resultgate/router/audit"
	"github.com/resultgate/resultgate/router/bus"
)

// startAuditApp starts serve's App on dataDir with loopback listeners and
// returns it with its log.
func startAuditApp(t *testing.T, dataDir string) (*app.App, *testutil.SyncBuffer) {
	t.Helper()
	cfg, err := config.Parse([]byte("policy:\n  time_zone: America/New_York\n  jurisdiction: US-KY\n  jurisdictions:\n    US-KY:\n      statute: US-KY-KRS-333.152\n"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = dataDir
	cfg.Durability = config.DurabilityOS
	cfg.MLLP.Addr, cfg.HTTP.Addr, cfg.NATS.Listen = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:-1"
	log := &testutil.SyncBuffer{}
	a := app.New(cfg, zerolog.New(log))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopApp(t, a) })
	return a, log
}

func stopApp(t *testing.T, a *app.App) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.Stop(ctx); err != nil {
		t.Errorf("stop: %v", err)
	}
}

// readyz returns /readyz's status code and body.
func readyz(t *testing.T, a *app.App) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + a.HTTPAddr().String() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestAuditVerifyAndRecovery: on a running serve, `audit verify` (with the
// credentials it finds in --data) reports an intact trail. Someone with the
// service credentials deletes AUDIT; after a restart serve does not recreate
// it, /readyz and the log say what is wrong and what to do, `audit verify`
// exits 1 naming the finding (also as JSON). `audit init --accept-new`
// recreates it and records the acceptance; verify passes and, after a
// restart, /readyz does too.
func TestAuditVerifyAndRecovery(t *testing.T) {
	dir := t.TempDir()
	a, _ := startAuditApp(t, dir)
	if _, _, err := runCLI(t, pathologyMessage(t, "AUD-1", "FL-AUD-1"), "send", "--addr", a.MLLPAddr().String(), "-"); err != nil {
		t.Fatalf("send: %v", err)
	}
	verify := func(extra ...string) (string, error) {
		t.Helper()
		out, errOut, err := runCLI(t, "", append([]string{"audit", "verify", "--data", dir, "--nats-url", a.NATSClientURL()}, extra...)...)
		return out + errOut, err
	}
	testutil.Eventually(t, 30*time.Second, "the hold's decision in the audit trail", func() bool {
		out, err := verify()
		return err == nil && !strings.Contains(out, "sequences 0 to 0")
	})
	out, err := verify()
	if err != nil || !strings.Contains(out, "no findings: the trail is intact") || !strings.Contains(out, "signature valid") {
		t.Fatalf("verify of an intact trail: %v\n%s", err, out)
	}
	if code, body := readyz(t, a); code != http.StatusOK {
		t.Fatalf("/readyz %d %s", code, body)
	}
	// Nothing unauthenticated reaches serve's NATS port.
	if nc, err := nats.Connect(a.NATSClientURL(), nats.Timeout(5*time.Second)); !errors.Is(err, nats.ErrAuthorization) {
		if nc != nil {
			nc.Close()
		}
		t.Fatalf("unauthenticated connect to serve's NATS port: %v, want %v", err, nats.ErrAuthorization)
	}

	// The service credentials can change and delete AUDIT (the operator's
	// cannot). The probe's MaxMsgs=1 shows on /readyz at once.
	nc, err := bus.Connect(testutil.Ctx(t), bus.ConnConfig{URL: a.NATSClientURL(), CredsFile: bus.ServiceCredsFile(dir), Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(testutil.Ctx(t), bus.StreamAudit)
	if err != nil {
		t.Fatal(err)
	}
	shrunk := s.CachedInfo().Config
	shrunk.MaxMsgs = 1
	if _, err := js.UpdateStream(testutil.Ctx(t), shrunk); err != nil {
		t.Fatal(err)
	}
	if code, body := readyz(t, a); code != http.StatusServiceUnavailable || !strings.Contains(body, "reconfigured: max_msgs is 1, want -1") {
		t.Errorf("/readyz after MaxMsgs=1: %d %s", code, body)
	}
	if err := js.DeleteStream(testutil.Ctx(t), bus.StreamAudit); err != nil {
		t.Fatal(err)
	}
	nc.Close()
	if code, body := readyz(t, a); code != http.StatusServiceUnavailable || !strings.Contains(body, "AUDIT stream does not exist") {
		t.Errorf("/readyz after the deletion: %d %s", code, body)
	}
	stopApp(t, a)

	a, log := startAuditApp(t, dir)
	code, body := readyz(t, a)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "AUDIT stream does not exist") || !strings.Contains(body, "audit init --accept-new") {
		t.Fatalf("/readyz after a restart without AUDIT: %d %s", code, body)
	}
	if l := log.String(); !strings.Contains(l, "audit trail integrity check failed") || !strings.Contains(l, "it was deleted") {
		t.Errorf("the start's log does not report the deletion:\n%s", l)
	}
	s, err = a.JetStream().Stream(testutil.Ctx(t), bus.StreamAudit)
	if err == nil {
		t.Fatalf("serve recreated AUDIT on restart: %+v", s.CachedInfo().State)
	}
	out, err = verify()
	if exitCode(err) != 1 || !strings.Contains(out, "FINDING missing") || !strings.Contains(out, "audit init --accept-new") {
		t.Fatalf("verify without AUDIT: exit %d\n%s", exitCode(err), out)
	}
	jout, _, err := runCLI(t, "", "audit", "verify", "--json", "--data", dir, "--nats-url", a.NATSClientURL())
	var rep audit.Report
	if exitCode(err) != 1 || json.Unmarshal([]byte(jout), &rep) != nil || len(rep.Findings) != 1 || rep.Findings[0].Kind != audit.FindingMissing {
		t.Fatalf("verify --json without AUDIT: exit %d\n%s", exitCode(err), jout)
	}

	// The operator's credentials may not recreate it; init uses the service's.
	if _, _, err := runCLI(t, "", "audit", "init", "--by", "ops", "--reason", "x", "--data", dir, "--nats-url", a.NATSClientURL()); exitCode(err) != 2 {
		t.Errorf("init without --accept-new: exit %d, want 2", exitCode(err))
	}
	out, errOut, err := runCLI(t, "", "audit", "init", "--accept-new", "--by", "ops", "--reason", "incident 42: AUDIT deleted", "--data", dir, "--nats-url", a.NATSClientURL())
	if err != nil || !strings.Contains(out, "accepted missing") {
		t.Fatalf("init: %v\n%s%s", err, out, errOut)
	}
	out, err = verify()
	if err != nil || !strings.Contains(out, "no findings") {
		t.Fatalf("verify after init: %v\n%s", err, out)
	}
	stopApp(t, a)
	a, _ = startAuditApp(t, dir)
	if code, body := readyz(t, a); code != http.StatusOK {
		t.Fatalf("/readyz after init and a restart: %d %s", code, body)
	}
	// The acceptance is itself in the trail.
	out, err = verify()
	if err != nil || !strings.Contains(out, "1 chained") {
		t.Fatalf("verify after the restart: %v\n%s", err, out)
	}
}
