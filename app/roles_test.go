package app

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/resultgate/resultgate/config"
	"github.com/resultgate/resultgate/hl7/mllp"
	"github.com/resultgate/resultgate/internal/loadgen"
	"github.com/resultgate/resultgate/internal/testutil"
	"github.com/resultgate/resultgate/router/api"
	"github.com/resultgate/resultgate/router/bus"
	"github.com/resultgate/resultgate/router/hold"
	"github.com/resultgate/resultgate/router/holdview"
	"github.com/resultgate/resultgate/router/pipeline"
	"github.com/resultgate/resultgate/router/store"
)

// writePartitionKey writes a fresh 32-byte partition key for the instances of
// one test to share, and returns its path.
func writePartitionKey(t *testing.T) string {
	t.Helper()
	keyFile := filepath.Join(t.TempDir(), "partition.key")
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, key, 0o600); err != nil {
		t.Fatal(err)
	}
	return keyFile
}

// startRoleInstance starts an App with roles on the NATS servers at urls and
// stops it when the test ends (an instance the test already stopped, or
// whose connection it closed, only frees its goroutines then).
func startRoleInstance(t *testing.T, cfg config.Config, roles ...config.Role) *App {
	t.Helper()
	cfg.Roles = roles
	a := New(cfg, zerolog.Nop())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.Start(ctx); err != nil {
		t.Fatalf("starting a %v instance: %v", roles, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = a.Stop(ctx)
	})
	return a
}

// readyz returns /readyz's status code and decoded body.
func readyz(t *testing.T, a *App) (int, readyReport) {
	t.Helper()
	code, body := httpGet(t, "http://"+a.HTTPAddr().String()+"/readyz")
	var rep readyReport
	if err := json.Unmarshal([]byte(body), &rep); err != nil {
		t.Fatalf("/readyz body %q: %v", body, err)
	}
	return code, rep
}

// consumerNames returns the names of HL7_IN's consumers (the classify
// durables).
func consumerNames(t *testing.T, js jetstream.JetStream) []string {
	t.Helper()
	ctx := testutil.Ctx(t)
	s, err := js.Stream(ctx, bus.StreamHL7In)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	l := s.ConsumerNames(ctx)
	for n := range l.Name() {
		names = append(names, n)
	}
	if err := l.Err(); err != nil {
		t.Fatal(err)
	}
	sort.Strings(names)
	return names
}

// freePort returns a loopback address nothing listens on (yet).
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// TestRolesStartOnlyTheirComponents runs one instance per role on one bare
// JetStream server (no streams yet) and checks what each starts: the
// intake-only instance creates HL7_IN and DEAD and nothing else, listens on
// MLLP, creates no classify consumer and mounts no API; the API-only
// instance does not listen on its MLLP address, creates no classify
// consumer, answers the NATS API and runs no reconciler; the pipeline-only
// instance creates the classify consumers and processes what the intake
// stored. /readyz reports each instance's roles, and an instance whose role
// lacks a stream is not ready, naming it, while the others stay ready.
func TestRolesStartOnlyTheirComponents(t *testing.T) {
	natsDir := t.TempDir()
	srv, err := bus.StartEmbedded(bus.EmbeddedConfig{
		DataDir: natsDir, Listen: "127.0.0.1:-1", Durability: config.DurabilityOS,
		ReadyTimeout: 10 * time.Second, Logger: zerolog.Nop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	keyFile := writePartitionKey(t)
	cfg := clusterAppConfig(t, srv.ClientURL(), keyFile)
	cfg.NATS.CredsFile = bus.ServiceCredsFile(natsDir)
	cfg.NATS.Replicas = 1
	cfg.Intake.Partitions = 2

	// Intake only, first: it creates what it writes and nothing else.
	in := startRoleInstance(t, cfg, config.RoleIntake)
	js := in.JetStream()
	// On a new installation the first instance, whatever its role, also
	// creates the audit trail (so HL7_IN never exists without AUDIT).
	missing := bus.Missing(testutil.Ctx(t), js, []string{bus.StreamHL7In, bus.StreamDead, bus.StreamAudit, bus.StreamPortal}, []string{bus.KVHolds})
	if missing[0] != nil || missing[1] != nil || missing[2] != nil {
		t.Fatalf("intake instance did not create HL7_IN, DEAD and AUDIT: %v", missing[:3])
	}
	missing = missing[1:]
	for _, err := range missing[2:] {
		if !errors.Is(err, bus.ErrStreamMissing) {
			t.Errorf("intake instance created more than it uses: %v", err)
		}
	}
	if in.MLLPAddr() == nil || in.Service() != nil {
		t.Fatalf("intake instance: MLLP %v, Service %v; want a listener and no pipeline", in.MLLPAddr(), in.Service())
	}
	if code, rep := readyz(t, in); code != 200 || rep.Status != "ready" || len(rep.Roles) != 1 || rep.Roles["intake"] != "ready" {
		t.Errorf("intake /readyz = %d %+v", code, rep)
	}
	sendAll(t, in.MLLPAddr().String(), msg(labORU, "ROLE1"), msg(pathORU, "ROLE2"))
	if got := storedControlIDs(t, js); got["ROLE1"] != 1 || got["ROLE2"] != 1 {
		t.Errorf("stored %v, want ROLE1 and ROLE2 once", got)
	}
	if names := consumerNames(t, js); len(names) != 0 {
		t.Errorf("intake-only instance: HL7_IN consumers %v, want none", names)
	}
	base := "http://" + in.HTTPAddr().String()
	if code, _ := httpGet(t, base+"/api/holds"); code != 404 {
		t.Errorf("intake instance GET /api/holds = %d, want 404 (no API)", code)
	}
	if code, _ := httpGet(t, base+"/"); code != 404 {
		t.Errorf("intake instance GET / = %d, want 404 (no web page)", code)
	}
	_, metrics := httpGet(t, base+"/metrics")
	if !strings.Contains(metrics, "resultgate_intake_acked_total 2") || strings.Contains(metrics, "resultgate_classify_processed_total") {
		t.Errorf("intake instance metrics: want intake counters and no pipeline ones:\n%s", metrics)
	}

	// API only: no MLLP listener even with an address configured, no
	// classify consumer, no scheduler or reconciler; the NATS API answers.
	apiCfg := cfg
	apiCfg.MLLP.Addr = freePort(t)
	ap := startRoleInstance(t, apiCfg, config.RoleAPI)
	if ap.MLLPAddr() != nil {
		t.Errorf("api instance listens on MLLP %v", ap.MLLPAddr())
	}
	if c, err := net.DialTimeout("tcp", apiCfg.MLLP.Addr, 2*time.Second); err == nil {
		c.Close()
		t.Errorf("api instance: %s accepts connections", apiCfg.MLLP.Addr)
	}
	if names := consumerNames(t, js); len(names) != 0 {
		t.Errorf("api-only instance: HL7_IN consumers %v, want none", names)
	}
	var hs []*hold.Hold
	if err := (api.Client{NC: in.nc, Timeout: 5 * time.Second}).Call(testutil.Ctx(t), bus.OpHoldsList, holdview.Filter{}, &hs); err != nil || len(hs) != 0 {
		t.Errorf("holds.list from the api instance = %v, %v; want no holds yet", hs, err)
	}
	if code, _ := httpGet(t, "http://"+ap.HTTPAddr().String()+"/api/holds"); code != 401 {
		t.Errorf("api instance GET /api/holds = %d, want 401 (mounted, token required)", code)
	}
	if code, rep := readyz(t, ap); code != 200 || len(rep.Roles) != 1 || rep.Roles["api"] != "ready" {
		t.Errorf("api /readyz = %d %+v", code, rep)
	}

	// Pipeline only: it takes what the intake stored.
	pl := startRoleInstance(t, cfg, config.RolePipeline)
	if pl.MLLPAddr() != nil {
		t.Errorf("pipeline instance listens on MLLP %v", pl.MLLPAddr())
	}
	if names := consumerNames(t, js); strings.Join(names, ",") != "classify-p00,classify-p01" {
		t.Errorf("HL7_IN consumers %v, want the two classify durables", names)
	}
	if code, _ := httpGet(t, "http://"+pl.HTTPAddr().String()+"/api/holds"); code != 404 {
		t.Errorf("pipeline instance GET /api/holds = %d, want 404 (no API)", code)
	}
	testutil.Eventually(t, 20*time.Second, "ROLE1 in the feed and ROLE2 held", func() bool {
		feed, fhir, err := portalByControlID(js)
		if err != nil || len(feed["ROLE1"]) != 1 || fhir["ROLE1"] != 1 {
			return false
		}
		holds, err := holdsByControlID(js)
		return err == nil && holds["ROLE2"] != nil && holds["ROLE2"].State == hold.StateHeld
	})
	// The API instance's view follows the holds bucket; it runs no
	// reconciler, the pipeline instance does.
	testutil.Eventually(t, 10*time.Second, "the api instance lists ROLE2's hold", func() bool {
		hs = nil
		err := (api.Client{NC: in.nc, Timeout: 5 * time.Second}).Call(testutil.Ctx(t), bus.OpHoldsList, holdview.Filter{State: hold.StateHeld}, &hs)
		return err == nil && len(hs) == 1 && hs[0].Inbound.ControlID == "ROLE2"
	})
	if n := ap.Service().Metrics().ReconcileRounds; n != 0 {
		t.Errorf("api instance ran %d reconcile rounds, want none", n)
	}
	if n := pl.Service().Metrics().ReconcileRounds; n == 0 {
		t.Error("pipeline instance ran no reconcile round")
	}
	if n := ap.Service().Metrics().Processed["acked"]; n != 0 {
		t.Errorf("api instance classified %d messages", n)
	}
	if code, rep := readyz(t, pl); code != 200 || len(rep.Roles) != 1 || rep.Roles["pipeline"] != "ready" {
		t.Errorf("pipeline /readyz = %d %+v", code, rep)
	}

	// A stream the pipeline and the API need goes missing: they are not
	// ready, naming it; the intake, which does not use it, still is.
	if err := js.DeleteStream(testutil.Ctx(t), bus.StreamNotify); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		a    *App
		role string
	}{{pl, "pipeline"}, {ap, "api"}} {
		code, rep := readyz(t, tc.a)
		if code != 503 || rep.Status != tc.role+": stream NOTIFY: stream missing" || rep.Roles[tc.role] != "stream NOTIFY: stream missing" {
			t.Errorf("%s /readyz without NOTIFY = %d %+v", tc.role, code, rep)
		}
	}
	if code, rep := readyz(t, in); code != 200 || rep.Roles["intake"] != "ready" {
		t.Errorf("intake /readyz without NOTIFY = %d %+v", code, rep)
	}
}

// TestRolesAllInOneReadyz: the default instance runs every role and /readyz
// reports each of them.
func TestRolesAllInOneReadyz(t *testing.T) {
	a := startApp(t, testConfig(t, t.TempDir()))
	code, rep := readyz(t, a)
	if code != 200 || rep.Status != "ready" || len(rep.Roles) != 3 {
		t.Fatalf("/readyz = %d %+v", code, rep)
	}
	for _, r := range config.AllRoles {
		if rep.Roles[string(r)] != "ready" {
			t.Errorf("role %s: %q", r, rep.Roles[string(r)])
		}
	}
}

// roleMsgKinds is the mix of the roles cluster test: routine labs released at
// once, pathology without a basis released at once, and pathology the
// Kentucky preset holds for 72 h.
var roleMsgKinds = [...]string{"lab", "held", "lab", "plain-path", "lab"}

// TestRolesAcrossClusterExactlyOnce runs resultgate split by role on an
// in-process three-node JetStream cluster: one intake-only instance, two
// pipeline-only instances and one API-only instance, R3. Results go in over
// MLLP to the intake; half-way one pipeline instance goes away, either
// stopped in order or with its NATS connection closed under it (as when its
// host dies). Every result released at once must be on portal.hl7 and
// portal.fhir exactly once, every held one must be exactly one open hold and
// nowhere in the feed, the API instance must list the holds, and a hold it
// releases reaches the feed exactly once.
func TestRolesAcrossClusterExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("three-node cluster test; skipped with -short")
	}
	for _, variant := range []string{"stop", "connection-lost"} {
		t.Run(variant, func(t *testing.T) { testRolesAcrossCluster(t, variant) })
	}
}

func testRolesAcrossCluster(t *testing.T, variant string) {
	start := time.Now()
	cl := startAppCluster(t, 3)
	cfg := clusterAppConfig(t, cl.urls(), writePartitionKey(t))
	in := startRoleInstance(t, cfg, config.RoleIntake)
	p1 := startRoleInstance(t, cfg, config.RolePipeline)
	p2 := startRoleInstance(t, cfg, config.RolePipeline)
	ap := startRoleInstance(t, cfg, config.RoleAPI)
	js := ap.JetStream()
	for _, a := range []*App{in, p1, p2, ap} {
		if code, rep := readyz(t, a); code != 200 {
			t.Fatalf("instance %v not ready: %+v", a.cfg.Roles, rep)
		}
	}

	const total = 200
	var msgs []clusterMsg
	for i := range total {
		kind := roleMsgKinds[i%len(roleMsgKinds)]
		id := fmt.Sprintf("RL%03d", i)
		msgs = append(msgs, clusterMsg{id: id, kind: kind, raw: clusterORU(kind, id, time.Time{})})
	}
	naks := 0
	for i, m := range msgs {
		if i == total/2 {
			testutil.Eventually(t, 20*time.Second, "both pipeline instances classifying", func() bool {
				return p1.Service().Metrics().Processed["acked"] > 3 && p2.Service().Metrics().Processed["acked"] > 3
			})
			switch variant {
			case "stop":
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				if err := p1.Stop(ctx); err != nil {
					t.Errorf("stopping pipeline instance 1: %v", err)
				}
				cancel()
			case "connection-lost":
				p1.nc.Close() // its host dies: no drain, whatever it holds is redelivered
			}
			t.Logf("pipeline instance 1 gone (%s) after %d messages, %d classified by it (%.1fs)",
				variant, i, p1.Service().Metrics().Processed["acked"], time.Since(start).Seconds())
		}
		naks += sendUntilAA(t, in.MLLPAddr().String(), m.raw, m.id)
	}
	t.Logf("%d messages AA'd by the intake instance (%d resent) in %.1fs", total, naks, time.Since(start).Seconds())

	var feed map[string][]nats.Header
	var fhir map[string]int
	var holds map[string]int
	var open map[string]*hold.Hold
	testutil.Eventually(t, 60*time.Second, "every result in the feed or held", func() bool {
		var err error
		if feed, fhir, err = portalByControlID(js); err != nil {
			return false
		}
		if holds, open, err = holdCounts(js); err != nil {
			return false
		}
		for _, m := range msgs {
			if m.kind == "held" {
				if h := open[m.id]; h == nil || h.State != hold.StateHeld {
					return false
				}
			} else if len(feed[m.id]) == 0 || fhir[m.id] == 0 {
				return false
			}
		}
		return true
	})
	if n := p2.Service().Metrics().Processed["acked"]; n == 0 {
		t.Error("pipeline instance 2 classified nothing")
	}
	for _, a := range []*App{in, p2, ap} {
		if code, rep := readyz(t, a); code != 200 {
			t.Errorf("instance %v not ready after pipeline instance 1 went away: %+v", a.cfg.Roles, rep)
		}
	}
	var bad []string
	var heldIDs []string
	for _, m := range msgs {
		switch m.kind {
		case "held":
			heldIDs = append(heldIDs, m.id)
			if n := len(feed[m.id]) + fhir[m.id]; n != 0 {
				bad = append(bad, fmt.Sprintf("%s: held result in the feed %d times", m.id, n))
			}
			if holds[m.id] != 1 {
				bad = append(bad, fmt.Sprintf("%s: %d hold records, want 1", m.id, holds[m.id]))
			}
		default:
			if len(feed[m.id]) != 1 || fhir[m.id] != 1 {
				bad = append(bad, fmt.Sprintf("%s (%s): %d HL7 and %d FHIR feed messages, want 1 each", m.id, m.kind, len(feed[m.id]), fhir[m.id]))
			}
			if holds[m.id] != 0 {
				bad = append(bad, fmt.Sprintf("%s (%s): released at once but has %d hold records", m.id, m.kind, holds[m.id]))
			}
		}
	}
	if len(feed) != total-len(heldIDs) {
		bad = append(bad, fmt.Sprintf("%d control IDs in the feed, want %d", len(feed), total-len(heldIDs)))
	}
	for _, b := range bad {
		t.Error(b)
	}

	// The API instance lists every hold and releases one; the release
	// reaches the feed once.
	apic := api.Client{NC: in.nc, Timeout: 10 * time.Second}
	var listed []*hold.Hold
	testutil.Eventually(t, 20*time.Second, "the api instance lists every hold", func() bool {
		listed = nil
		err := apic.Call(context.Background(), bus.OpHoldsList, holdview.Filter{State: hold.StateHeld, Limit: 1000}, &listed)
		return err == nil && len(listed) == len(heldIDs)
	})
	got := map[string]bool{}
	for _, h := range listed {
		got[h.Inbound.ControlID] = true
	}
	for _, id := range heldIDs {
		if !got[id] {
			t.Errorf("api instance does not list the hold of %s", id)
		}
	}
	target := open[heldIDs[0]]
	var released hold.Hold
	if err := apic.Call(context.Background(), bus.OpHoldsRelease, api.ReleaseAPIRequest{ID: target.ID, AckRequest: pipeline.AckRequest{By: "D001"}}, &released); err != nil {
		t.Fatalf("holds.release through the api instance: %v", err)
	}
	if released.State != hold.StateReleased || released.Release.Path != hold.PathAcknowledged {
		t.Errorf("released hold: state %s, path %s", released.State, released.Release.Path)
	}
	testutil.Eventually(t, 20*time.Second, heldIDs[0]+" on the feed after its release", func() bool {
		var err error
		feed, fhir, err = portalByControlID(js)
		return err == nil && len(feed[heldIDs[0]]) > 0 && fhir[heldIDs[0]] > 0
	})
	if n := len(feed[heldIDs[0]]); n != 1 || fhir[heldIDs[0]] != 1 {
		t.Errorf("%s after release: %d HL7 and %d FHIR feed messages, want 1 each", heldIDs[0], n, fhir[heldIDs[0]])
	} else if p := feed[heldIDs[0]][0].Get(bus.HeaderReleasePath); p != string(hold.PathAcknowledged) {
		t.Errorf("%s: feed release path %q, want acknowledged", heldIDs[0], p)
	}
	t.Logf("checked %d results (%d held) in %.1fs", total, len(heldIDs), time.Since(start).Seconds())
}

// holdCounts reads every hold record and returns how many records each
// control ID has, and the record of each.
func holdCounts(js jetstream.JetStream) (map[string]int, map[string]*hold.Hold, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, bus.KVHolds)
	if err != nil {
		return nil, nil, err
	}
	st := store.NewHolds(kv)
	keys, err := kv.ListKeys(ctx)
	if err != nil {
		return nil, nil, err
	}
	counts, byID := map[string]int{}, map[string]*hold.Hold{}
	for k := range keys.Keys() {
		h, err := st.Get(ctx, k)
		if err != nil {
			return nil, nil, err
		}
		counts[h.Inbound.ControlID]++
		byID[h.Inbound.ControlID] = h
	}
	return counts, byID, nil
}

// TestPermissionsIntakeRole runs an intake-only instance as the "intake" user
// of testdata/nats/intake-permissions.conf (the file docs/OPERATIONS.md
// shows): it ensures its streams, stores and ACKs results, recognises a
// resend, dead-letters a refused message type and reports ready, and the
// server logs no permission violation for it. It is refused the pipeline's
// streams.
func TestPermissionsIntakeRole(t *testing.T) {
	conf := filepath.Join(testutil.RepoRoot(t), "testdata", "nats", "intake-permissions.conf")
	opts, err := server.ProcessConfigFile(conf)
	if err != nil {
		t.Fatalf("loading %s: %v", conf, err)
	}
	opts.Host, opts.Port, opts.StoreDir, opts.NoSigs = "127.0.0.1", -1, t.TempDir(), true
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	slog := &serverLog{}
	srv.SetLoggerV2(slog, false, false, false)
	srv.Start()
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}
	srvs := []*server.Server{srv}
	cfg := clusterAppConfig(t, userURL(srvs, "intake", "example-intake-password"), writePartitionKey(t))
	cfg.NATS.Replicas = 1
	in := startRoleInstance(t, cfg, config.RoleIntake)
	addr := in.MLLPAddr().String()
	sendAll(t, addr, msg(labORU, "PI1"), msg(pathORU, "PI2"), msg(labORU, "PI1"))
	adt := strings.Replace(string(msg(labORU, "PI3")), "ORU^R01^ORU_R01", "ADT^A01^ADT_A01", 1)
	if n := sendUntilAA(t, addr, msg(labORU, "PI4"), "PI4"); n != 0 {
		t.Errorf("PI4: %d negative answers", n)
	}
	ctx := testutil.Ctx(t)
	cl, err := mllp.Dial(ctx, mllp.ClientConfig{Addr: addr, AckTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ack, err := cl.Send(ctx, []byte(adt))
	cl.Close()
	if err != nil || loadgen.AckCode(ack) != "AR" {
		t.Errorf("ADT: ACK %q, %v; want AR", ack, err)
	}
	if got := storedControlIDs(t, in.JetStream()); len(got) != 3 || got["PI1"] != 1 {
		t.Errorf("stored %v, want PI1, PI2, PI4 once each", got)
	}
	testutil.Eventually(t, 10*time.Second, "the ADT dead-lettered", func() bool {
		return in.intake.Stats().DeadLettered == 1
	})
	if code, rep := readyz(t, in); code != 200 || rep.Roles["intake"] != "ready" {
		t.Errorf("/readyz = %d %+v", code, rep)
	}
	if v := slog.violations(); len(v) != 0 {
		t.Errorf("the intake instance needed more than the file grants:\n%s", strings.Join(v, "\n"))
	}
	// It cannot create what the pipeline uses: the server drops the request
	// (no answer) and logs the violation.
	cctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := in.JetStream().CreateOrUpdateStream(cctx, jetstream.StreamConfig{Name: bus.StreamPortal, Subjects: []string{bus.SubjectPortalAll}}); err == nil {
		t.Error("intake user created PORTAL")
	}
	testutil.Eventually(t, 5*time.Second, "the refused PORTAL request logged", func() bool {
		v := slog.violations()
		return len(v) > 0 && strings.Contains(strings.Join(v, "\n"), "$JS.API.STREAM.UPDATE.PORTAL")
	})
}

// TestRolesWarnUnusedForwarder: an instance without the pipeline role does
// not start the forwarder it is configured with, and says so.
func TestRolesWarnUnusedForwarder(t *testing.T) {
	tj := testutil.StartJS(t, config.DurabilityOS)
	cfg := clusterAppConfig(t, tj.Srv.ClientURL(), writePartitionKey(t))
	cfg.NATS.CredsFile = bus.ServiceCredsFile(tj.Dir)
	cfg.NATS.Replicas = 1
	withFwd, err := config.Parse([]byte("forwarder:\n  enabled: true\n  addr: " + freePort(t) + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Extra = withFwd.Extra
	for _, tc := range []struct {
		roles []config.Role
		warn  bool
	}{{[]config.Role{config.RoleIntake, config.RoleAPI}, true}, {[]config.Role{config.RolePipeline}, false}} {
		var logs testutil.SyncBuffer
		c := cfg
		c.Roles = tc.roles
		a := New(c, zerolog.New(&logs))
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := a.Start(ctx); err != nil {
			cancel()
			t.Fatalf("%v: %v", tc.roles, err)
		}
		cancel()
		if got := strings.Contains(logs.String(), "forwarder.enabled has no effect on this instance"); got != tc.warn || (a.fwd != nil) == tc.warn {
			t.Errorf("roles %v: warned %v, forwarder started %v; want warned %v", tc.roles, got, a.fwd != nil, tc.warn)
		}
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := a.Stop(sctx); err != nil {
			t.Errorf("stop %v: %v", tc.roles, err)
		}
		scancel()
	}
}
