package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/resultgate/resultgate/router/intake"

	"github.com/resultgate/resultgate/router/dead"

	"github.com/resultgate/resultgate/router/audit"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/resultgate/resultgate/app"
	"github.com/resultgate/resultgate/config"
	"github.com/resultgate/resultgate/internal/testutil"
	"github.com/resultgate/resultgate/router/bus"
	"github.com/resultgate/resultgate/router/hold"
)

// startKentucky starts an in-process resultgate with the Kentucky preset
// (pathology likely to show malignancy is held 72 h after OBR-22) and embedded
// NATS on a free loopback port.
func startKentucky(t *testing.T) *app.App {
	t.Helper()
	cfg, err := config.Parse([]byte("policy:\n  time_zone: America/New_York\n  jurisdiction: US-KY\n  jurisdictions:\n    US-KY:\n      statute: US-KY-KRS-333.152\n"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = t.TempDir()
	cfg.Durability = config.DurabilityOS
	cfg.MLLP.Addr, cfg.HTTP.Addr, cfg.NATS.Listen = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:-1"
	a := app.New(cfg, zerolog.Nop())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer scancel()
		a.Stop(sctx)
	})
	return a
}

// pathologyMessage is the synthetic surgical pathology template with its
// placeholders filled: provider DR0001, filler order FL-OPS-1, reported now.
func pathologyMessage(t *testing.T, ctrl, filler string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testutil.RepoRoot(t), "testdata", "bench", "path_surgical.hl7"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().In(time.FixedZone("EST", -5*3600))
	r := strings.NewReplacer("{{CTRL}}", ctrl, "{{MRN}}", "OPS000001", "{{PLACER}}", "PL-"+filler, "{{FILLER}}", filler,
		"{{PROV}}", "DR0001", "{{OBS}}", now.Add(-2*time.Hour).Format("20060102150405-0700"), "{{RPT}}", now.Format("20060102150405-0700"))
	return strings.ReplaceAll(strings.TrimRight(r.Replace(string(b)), "\n"), "\n", "\r") + "\r"
}

// TestOperatorCommands drives holds, consent, dead and audit against a running
// instance over its NATS API, as an operator would from a shell.
func TestOperatorCommands(t *testing.T) {
	a := startKentucky(t)
	natsURL := a.NATSClientURL()
	if natsURL == "" {
		t.Fatal("no embedded NATS client URL")
	}
	cli := func(args ...string) (string, string, error) {
		t.Helper()
		return runCLI(t, "", append(args, "--nats-url", natsURL, "--nats-creds", a.NATSOperatorCreds())...)
	}

	out, errOut, err := runCLI(t, pathologyMessage(t, "OPS-1", "FL-OPS-1"), "send", "--addr", a.MLLPAddr().String(), "-")
	if err != nil {
		t.Fatalf("send: %v\n%s%s", err, out, errOut)
	}

	// holds list --json shows the held pathology result once the pipeline wrote it.
	var holds []hold.Hold
	testutil.Eventually(t, 30*time.Second, "the hold is listed", func() bool {
		out, _, err := cli("holds", "list", "--status", "held", "--json")
		if err != nil {
			t.Fatalf("holds list: %v", err)
		}
		holds = nil
		if err := json.Unmarshal([]byte(out), &holds); err != nil {
			t.Fatalf("holds list --json: %v: %s", err, out)
		}
		return len(holds) == 1
	})
	h := holds[0]
	if h.ProviderID != "DR0001" || h.State != hold.StateHeld {
		t.Fatalf("hold: provider %q state %q", h.ProviderID, h.State)
	}
	out, _, err = cli("holds", "list", "--provider", "DR0001")
	if err != nil || !strings.Contains(out, h.ID) || !strings.Contains(out, "pathology") || !strings.Contains(out, "1 hold(s)") {
		t.Errorf("holds list table: %v\n%s", err, out)
	}
	out, _, err = cli("holds", "list", "--provider", "DR0002")
	if err != nil || strings.Contains(out, h.ID) || !strings.Contains(out, "0 hold(s)") {
		t.Errorf("another provider's list: %v\n%s", err, out)
	}

	// show needs --by (the read is audited), then prints evidence and bases.
	if _, _, err := cli("holds", "show", h.ID); exitCode(err) != 2 || !strings.Contains(err.Error(), "--by is required") {
		t.Errorf("show without --by: exit %d, %v", exitCode(err), err)
	}
	out, _, err = cli("holds", "show", h.ID, "--by", "ops-anna")
	if err != nil {
		t.Fatalf("holds show: %v", err)
	}
	for _, want := range []string{"hold " + h.ID + ": held", "provider:  DR0001", "pathology", "OBR[1]-", "state-law", "Kentucky law (Ky. Rev. Stat. § 333.152(2)): held until ", "unless you release it sooner", "history:", "-> held"} {
		if !strings.Contains(out, want) {
			t.Errorf("holds show lacks %q:\n%s", want, out)
		}
	}
	if _, _, err := cli("holds", "show", "nosuchhold", "--by", "ops-anna"); exitCode(err) != 1 || !strings.Contains(err.Error(), "not_found") {
		t.Errorf("show unknown hold: exit %d, %v", exitCode(err), err)
	}

	// Release: another clinician is refused, the ordering provider releases once.
	if _, _, err := cli("holds", "release", h.ID); exitCode(err) != 2 || err.Error() != "--provider is required" {
		t.Errorf("release without --provider: exit %d, %v", exitCode(err), err)
	}
	if _, _, err := cli("holds", "release", h.ID, "--provider", "DR0002"); exitCode(err) != 1 || !strings.Contains(err.Error(), "forbidden") {
		t.Errorf("release by another provider: exit %d, %v", exitCode(err), err)
	}
	// --by, the deprecated alias, still works and says so.
	if _, errOut, err := cli("holds", "release", h.ID, "--by", "DR0002"); exitCode(err) != 1 || !strings.Contains(err.Error(), "forbidden") ||
		!strings.Contains(errOut, "--by on holds release is deprecated (it is the provider ID here, a name elsewhere); use --provider") {
		t.Errorf("release --by: exit %d, %v, stderr %q", exitCode(err), err, errOut)
	}
	if _, _, err := cli("holds", "release", h.ID, "--by", "DR0002", "--provider", "DR0001"); exitCode(err) != 2 || !strings.Contains(err.Error(), "differ") {
		t.Errorf("release --by and --provider differing: exit %d, %v", exitCode(err), err)
	}
	if _, _, err := cli("holds", "override", h.ID, "--by", "oncall-sam"); exitCode(err) != 2 || !strings.Contains(err.Error(), "--reason is required") {
		t.Errorf("override without reason: exit %d, %v", exitCode(err), err)
	}
	out, _, err = cli("holds", "release", h.ID, "--provider", "DR0001", "--reason", "discussed in clinic", "--note", "Your doctor has gone through this result with you.")
	if err != nil || !strings.Contains(out, "hold "+h.ID+": released (acknowledged by DR0001") {
		t.Fatalf("release: %v\n%s", err, out)
	}
	if _, _, err := cli("holds", "release", h.ID, "--provider", "DR0001"); exitCode(err) != 1 || !strings.Contains(err.Error(), "already_released") {
		t.Errorf("second release: exit %d, %v", exitCode(err), err)
	}
	if _, _, err := cli("holds", "override", h.ID, "--by", "oncall-sam", "--reason", "patient called"); exitCode(err) != 1 || !strings.Contains(err.Error(), "already_released") {
		t.Errorf("override after release: exit %d, %v", exitCode(err), err)
	}

	// A determination on an order with no result yet.
	if _, _, err := cli("holds", "place", "--order", "FL-OPS-2", "--reason", "x", "--by", "DR0001"); exitCode(err) != 2 || !strings.Contains(err.Error(), "--issuer is required") {
		t.Errorf("place without issuer: exit %d, %v", exitCode(err), err)
	}
	if _, _, err := cli("holds", "place", "--order", "FL-OPS-2", "--issuer", "SYNPATH", "--reason", "x", "--by", "DR0001", "--harm-type", "embarrassment"); exitCode(err) != 1 || !strings.Contains(err.Error(), "bad_request: harm type \"embarrassment\": want one of life-or-physical-safety, substantial-harm-to-other") {
		t.Errorf("place with an unknown harm type: exit %d, %v", exitCode(err), err)
	}
	out, _, err = cli("holds", "place", "--order", "FL-OPS-2", "--issuer", "synpath", "--reason", "diagnosis to be disclosed in person", "--by", "DR0001", "--harm-type", hold.HarmLifeOrSafety)
	if err != nil || !strings.Contains(out, "no result on this order yet") || !strings.Contains(out, "results of order FL-OPS-2 issued by SYNPATH") {
		t.Fatalf("holds place: %v\n%s", err, out)
	}
	detID := strings.Fields(out)[1]
	if _, _, err := cli("holds", "place", "--order", "FL-OPS-2", "--issuer", "SYNPATH", "--by", "DR0001"); exitCode(err) != 2 {
		t.Errorf("place without reason: exit %d, %v", exitCode(err), err)
	}
	// The determination holds the order's result when it arrives, on the clinician's basis.
	if _, _, err := runCLI(t, pathologyMessage(t, "OPS-2", "FL-OPS-2"), "send", "--addr", a.MLLPAddr().String(), "-"); err != nil {
		t.Fatal(err)
	}
	var detHold string
	testutil.Eventually(t, 30*time.Second, "the determined order is held", func() bool {
		out, _, _ := cli("holds", "list", "--status", "held", "--json")
		var hs []hold.Hold
		json.Unmarshal([]byte(out), &hs)
		for _, h := range hs {
			for _, b := range h.Bases {
				if b.Kind == "clinician-determination" {
					detHold = h.ID
				}
			}
		}
		return detHold != ""
	})
	out, _, err = cli("holds", "show", detHold, "--by", "ops-anna")
	if err != nil || !strings.Contains(out, "harm type life-or-physical-safety: diagnosis to be disclosed in person") {
		t.Errorf("the determination basis does not carry the harm type: %v\n%s", err, out)
	}

	// The placing clinician lists and withdraws it.
	out, _, err = cli("determinations", "list", "--by", "DR0001")
	if err != nil || !strings.Contains(out, detID) || !strings.Contains(out, "SYNPATH") || !strings.Contains(out, "active") {
		t.Errorf("determinations list: %v\n%s", err, out)
	}
	if _, _, err := cli("determinations", "withdraw", detID, "--by", "DR0001"); exitCode(err) != 2 {
		t.Errorf("withdraw without reason: exit %d, %v", exitCode(err), err)
	}
	if _, _, err := cli("determinations", "withdraw", detID, "--by", "DR0002", "--reason", "x"); exitCode(err) != 1 || !strings.Contains(err.Error(), "forbidden") {
		t.Errorf("withdraw by another clinician: exit %d, %v", exitCode(err), err)
	}
	out, _, err = cli("determinations", "withdraw", detID, "--by", "DR0001", "--reason", "disclosed in clinic")
	if err != nil || !strings.Contains(out, "determination "+detID+" withdrawn by DR0001") {
		t.Errorf("determinations withdraw: %v\n%s", err, out)
	}
	out, _, err = cli("determinations", "list", "--state", "withdrawn")
	if err != nil || !strings.Contains(out, detID) {
		t.Errorf("withdrawn list: %v\n%s", err, out)
	}

	// Consent put and show.
	consent := filepath.Join(testutil.RepoRoot(t), "testdata", "consent", "until-clinician-review.json")
	if _, _, err := cli("consent", "put", consent, "--patient", "OPS000099"); exitCode(err) != 2 {
		t.Errorf("consent put without --by: exit %d, %v", exitCode(err), err)
	}
	out, _, err = cli("consent", "put", consent, "--patient", "OPS000099", "--by", "portal:patient")
	if err != nil || !strings.Contains(out, "consent stored (revision 1)") {
		t.Fatalf("consent put: %v\n%s", err, out)
	}
	// Another patient's first Consent is its revision 1; the first patient's
	// second, filed by a clinician, is revision 2 and recorded as theirs.
	if out, _, err := cli("consent", "put", consent, "--patient", "OPS000097", "--by", "portal:patient"); err != nil || !strings.Contains(out, "consent stored (revision 1)") {
		t.Fatalf("another patient's consent put: %v\n%s", err, out)
	}
	out, _, err = cli("consent", "put", consent, "--patient", "OPS000099", "--by", "Dr Grey", "--role", "clinician")
	if err != nil || !strings.Contains(out, "consent stored (revision 2)") {
		t.Fatalf("second consent put: %v\n%s", err, out)
	}
	out, _, err = cli("consent", "show", "OPS000099")
	if err != nil || !strings.Contains(out, "revision 2, filed ") || !strings.Contains(out, "by Dr Grey (clinician)") || !strings.Contains(out, `"resourceType": "Consent"`) {
		t.Errorf("consent show: %v\n%s", err, out)
	}
	if _, _, err := cli("consent", "show", "OPS000098"); exitCode(err) != 1 || !strings.Contains(err.Error(), "not_found") {
		t.Errorf("consent show unknown: exit %d, %v", exitCode(err), err)
	}

	// A stored message that does not parse is dead-lettered; list and replay it.
	bad := nats.NewMsg("hl7.in.p00")
	bad.Data = []byte("this is not HL7")
	bad.Header.Set(bus.HeaderMsgID, "ops-test-bad-1")
	pctx, pcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer pcancel()
	if _, err := a.JetStream().PublishMsg(pctx, bad); err != nil {
		t.Fatalf("publishing the bad message: %v", err)
	}
	var dead []dead.Record
	testutil.Eventually(t, 60*time.Second, "the bad message is dead-lettered", func() bool {
		out, _, err := cli("dead", "list", "--json")
		if err != nil {
			t.Fatalf("dead list: %v", err)
		}
		dead = nil
		json.Unmarshal([]byte(out), &dead)
		return len(dead) == 1
	})
	if dead[0].Reason != bus.DeadParse {
		t.Errorf("dead reason %q", dead[0].Reason)
	}
	out, _, err = cli("dead", "list")
	if err != nil || !strings.Contains(out, "parse") || !strings.Contains(out, "1 dead-lettered message(s)") {
		t.Errorf("dead list table: %v\n%s", err, out)
	}
	seq := fmt.Sprint(dead[0].Seq)
	if _, _, err := cli("dead", "replay", seq); exitCode(err) != 2 {
		t.Errorf("replay without --by: exit %d", exitCode(err))
	}
	if _, _, err := cli("dead", "replay", "zero", "--by", "ops-anna"); exitCode(err) != 2 {
		t.Errorf("replay with a bad SEQ: exit %d", exitCode(err))
	}
	out, _, err = cli("dead", "replay", seq, "--by", "ops-anna")
	if err != nil || !strings.Contains(out, "re-queued") {
		t.Fatalf("dead replay: %v\n%s", err, out)
	}
	// Replayed, it fails again the same way: a second dead record.
	testutil.Eventually(t, 60*time.Second, "the replayed message is dead-lettered again", func() bool {
		out, _, _ := cli("dead", "list", "--json")
		dead = nil
		json.Unmarshal([]byte(out), &dead)
		return len(dead) == 2
	})

	// The audit trail has the decision, the audited read, the release, the
	// refused release is not a transition, the determination, the Consent and the replay.
	out, _, err = cli("audit", "--hold", h.ID, "--json")
	if err != nil {
		t.Fatalf("audit --hold: %v", err)
	}
	var evs []audit.Event
	if err := json.Unmarshal([]byte(out), &evs); err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, e := range evs {
		if e.HoldID != h.ID {
			t.Errorf("audit --hold returned an event of hold %q", e.HoldID)
		}
		kinds[e.Kind]++
		if e.Kind == bus.AuditAccess && (e.Actor != "ops-anna" || e.Action != "hold.read") {
			t.Errorf("access event: %+v", e)
		}
		if e.Kind == bus.AuditTransition && e.To == hold.StateReleased && (e.Actor != "DR0001" || e.Reason != "discussed in clinic") {
			t.Errorf("release transition: %+v", e)
		}
	}
	if kinds[bus.AuditDecision] != 1 || kinds[bus.AuditAccess] != 1 || kinds[bus.AuditTransition] < 1 {
		t.Errorf("audit kinds for the hold: %v", kinds)
	}
	out, _, err = cli("audit", "--since", "1h")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"decision", "transition", "determination", "consent", "replay", `reason="diagnosis to be disclosed in person"`, "harm_type=life-or-physical-safety"} {
		if !strings.Contains(out, want) {
			t.Errorf("audit --since lacks %q", want)
		}
	}
	if _, _, err := cli("audit"); exitCode(err) != 2 {
		t.Errorf("audit without a filter: exit %d", exitCode(err))
	}
	if _, _, err := cli("audit", "--since", "last tuesday"); exitCode(err) != 2 || !strings.Contains(err.Error(), "--since: want") {
		t.Errorf("audit bad --since: %v", err)
	}
}

// A message the intake refused is listed with its stage, and replaying it is
// refused with the reason and what to do, instead of "has no inbound subject".
func TestDeadReplayOfIntakeRejection(t *testing.T) {
	a := startKentucky(t)
	cli := func(args ...string) (string, string, error) {
		t.Helper()
		return runCLI(t, "", append(args, "--nats-url", a.NATSClientURL(), "--nats-creds", a.NATSOperatorCreds())...)
	}
	adt := "MSH|^~\\&|ADT|HOSP|RG|HOSP|20261207120000||ADT^A01|ADT-DEAD-1|P|2.5.1\rPID|1||X1^^^HOSP^MR\r"
	if _, _, err := runCLI(t, adt, "send", "--addr", a.MLLPAddr().String(), "-"); exitCode(err) != 1 {
		t.Fatalf("send of an ADT: exit %d, %v; want 1 (AR)", exitCode(err), err)
	}
	var dead []dead.Record
	testutil.Eventually(t, 30*time.Second, "the refused message is listed", func() bool {
		out, _, err := cli("dead", "list", "--json")
		if err != nil {
			t.Fatalf("dead list: %v", err)
		}
		dead = nil
		json.Unmarshal([]byte(out), &dead)
		return len(dead) == 1
	})
	if dead[0].Stage != "intake" || dead[0].Reason != string(intake.ReasonType) {
		t.Fatalf("dead record %+v", dead[0])
	}
	out, _, err := cli("dead", "list")
	if err != nil || !strings.Contains(out, "STAGE") || !strings.Contains(out, " intake ") {
		t.Errorf("dead list table: %v\n%s", err, out)
	}
	_, _, err = cli("dead", "replay", fmt.Sprint(dead[0].Seq), "--by", "ops-anna")
	want := fmt.Sprintf("bad_request: dead seq %d cannot be replayed: the intake refused it (type: %s) and answered AR/CR, so it was never stored "+
		"and the sender still holds it; if this message type should be accepted, add it to intake.accept_types, restart, and have the sender resend it: bad request",
		dead[0].Seq, intake.TextTypeNotAccepted+": ADT^A01")
	if exitCode(err) != 1 || err.Error() != want {
		t.Errorf("replay of an intake rejection: exit %d, %v\nwant %s", exitCode(err), err, want)
	}
}

// Without a running instance the commands say so instead of hanging.
func TestOperatorCommandsNoServer(t *testing.T) {
	_, _, err := runCLI(t, "", "holds", "list", "--nats-url", "nats://127.0.0.1:1", "--timeout", "2s")
	if exitCode(err) != 1 || !strings.Contains(err.Error(), "is resultgate serve running?") {
		t.Errorf("no server: exit %d, %v", exitCode(err), err)
	}
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"2026-11-01":           time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),
		"2026-11-20T08:00:00Z": time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC),
		"24h":                  now.Add(-24 * time.Hour),
		"90m":                  now.Add(-90 * time.Minute),
	} {
		got, err := parseSince(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseSince(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "yesterday", "-5h", "2026-13-01"} {
		if _, err := parseSince(bad, now); err == nil {
			t.Errorf("parseSince(%q) accepted", bad)
		}
	}
}
