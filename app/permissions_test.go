package app

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/resultgate/resultgate/router/dead"

	"github.com/resultgate/resultgate/router/api"
	"github.com/resultgate/resultgate/router/pipeline"

	"github.com/resultgate/resultgate/router/holdview"

	"github.com/resultgate/resultgate/router/audit"
	"github.com/resultgate/resultgate/router/notify/deliver"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/resultgate/resultgate/config"
	"github.com/resultgate/resultgate/hl7/mllp"
	"github.com/resultgate/resultgate/internal/loadgen"
	"github.com/resultgate/resultgate/internal/testutil"
	"github.com/resultgate/resultgate/router/bus"
	"github.com/resultgate/resultgate/router/hold"
	"github.com/resultgate/resultgate/router/intake"
)

// The example passwords of testdata/nats/permissions.conf.
const (
	permResultgatePW = "example-resultgate-password"
	permPortalPW     = "example-portal-password"
	permOpsPW        = "example-ops-password"
	permAdminPW      = "example-admin-password"
)

// serverLog is a nats-server Logger that keeps every line, so a test can count
// the permission violations the server reported.
type serverLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *serverLog) add(level, format string, v ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, level+" "+fmt.Sprintf(format, v...))
}

func (l *serverLog) Noticef(format string, v ...any) { l.add("[INF]", format, v...) }
func (l *serverLog) Warnf(format string, v ...any)   { l.add("[WRN]", format, v...) }
func (l *serverLog) Fatalf(format string, v ...any)  { l.add("[FTL]", format, v...) }
func (l *serverLog) Errorf(format string, v ...any)  { l.add("[ERR]", format, v...) }
func (l *serverLog) Debugf(format string, v ...any)  { l.add("[DBG]", format, v...) }
func (l *serverLog) Tracef(format string, v ...any)  { l.add("[TRC]", format, v...) }

// violations returns the server's "Publish Violation" and "Subscription
// Violation" lines (nats-server logs a refused publish or subscription so).
func (l *serverLog) violations() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, s := range l.lines {
		if strings.Contains(s, "Violation") {
			out = append(out, s)
		}
	}
	return out
}

// startPermissionsCluster starts n JetStream servers from
// testdata/nats/permissions.conf, overriding only the client address, the store
// directory and the cluster (routes on free loopback ports), and waits until
// the meta leader knows every peer. Every server logs into log.
func startPermissionsCluster(t *testing.T, n int, log *serverLog) []*server.Server {
	t.Helper()
	conf := filepath.Join(testutil.RepoRoot(t), "testdata", "nats", "permissions.conf")
	return testutil.StartJSCluster(t, n, "PERM", func(int) *server.Options {
		opts, err := server.ProcessConfigFile(conf)
		if err != nil {
			t.Fatalf("loading %s: %v", conf, err)
		}
		if !opts.JetStream || len(opts.Users) != 4 {
			t.Fatalf("%s: JetStream %v, %d users; want JetStream and 4 users", conf, opts.JetStream, len(opts.Users))
		}
		return opts
	}, func(s *server.Server) { s.SetLoggerV2(log, false, false, false) })
}

// userURL returns nats://user:password@host:port for every server, comma-separated.
func userURL(srvs []*server.Server, user, password string) string {
	var us []string
	for _, s := range srvs {
		u, _ := url.Parse(s.ClientURL())
		u.User = url.UserPassword(user, password)
		us = append(us, u.String())
	}
	return strings.Join(us, ",")
}

// permClient is a connection as one user, with its asynchronous errors (the
// server's -ERR for a refused publish or subscription) on errs.
type permClient struct {
	nc   *nats.Conn
	errs chan error
}

func connectAs(t *testing.T, srvs []*server.Server, user, password, inboxPrefix string) *permClient {
	t.Helper()
	c := &permClient{errs: make(chan error, 64)}
	opts := []nats.Option{
		nats.Name("perm-test-" + user),
		nats.Timeout(5 * time.Second),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			select {
			case c.errs <- err:
			default:
			}
		}),
	}
	if inboxPrefix != "" {
		opts = append(opts, nats.CustomInboxPrefix(inboxPrefix))
	}
	nc, err := nats.Connect(userURL(srvs, user, password), opts...)
	if err != nil {
		t.Fatalf("connecting as %s: %v", user, err)
	}
	t.Cleanup(nc.Close)
	c.nc = nc
	return c
}

// refused runs do and asserts that the server answered with exactly want, and
// nothing else, before a round trip completes.
func (c *permClient) refused(t *testing.T, name string, do func(*nats.Conn) error, want string) {
	t.Helper()
	if err := do(c.nc); err != nil {
		t.Errorf("%s: the client call itself failed: %v", name, err)
		return
	}
	if err := c.nc.FlushTimeout(5 * time.Second); err != nil {
		t.Errorf("%s: flush: %v", name, err)
	}
	select {
	case err := <-c.errs:
		if err.Error() != want {
			t.Errorf("%s: error %q, want %q", name, err, want)
		}
	case <-time.After(5 * time.Second):
		t.Errorf("%s: no error from the server, want %q", name, want)
	}
	c.noErrors(t, name)
}

// noErrors asserts no asynchronous error is pending on c.
func (c *permClient) noErrors(t *testing.T, name string) {
	t.Helper()
	select {
	case err := <-c.errs:
		t.Errorf("%s: unexpected asynchronous error %v", name, err)
	default:
	}
}

// api calls resultgate's request/reply API as c and decodes data into out.
func (c *permClient) api(t *testing.T, op string, req, out any) {
	t.Helper()
	body, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	m, err := c.nc.Request(bus.SubjectAPIPrefix+op, body, 15*time.Second)
	if err != nil {
		t.Fatalf("API %s: %v", op, err)
	}
	var resp api.Response
	if err := json.Unmarshal(m.Data, &resp); err != nil {
		t.Fatalf("API %s: %v in %q", op, err, m.Data)
	}
	if resp.Error != nil {
		t.Fatalf("API %s: %v", op, resp.Error)
	}
	if out != nil {
		if err := json.Unmarshal(resp.Data, out); err != nil {
			t.Fatalf("API %s: %v in %s", op, err, resp.Data)
		}
	}
}

func pubErr(subj string) string {
	return fmt.Sprintf("nats: permissions violation: Permissions Violation for Publish to %q", subj)
}

func subErr(subj string) string {
	return fmt.Sprintf("nats: permissions violation: Permissions Violation for Subscription to %q", subj)
}

// TestPermissionsClusterMode runs the documented NATS permissions
// (testdata/nats/permissions.conf) on an in-process three-node JetStream cluster.
// resultgate connects as user "resultgate" (credentials in nats.url) and does
// everything the daemon does: MLLP intake, classification, holds, a Consent put,
// releases by a clinician (Go API and request/reply API), a dead letter, a
// deadline release, API reads. That must work with no permission violation.
// Then the portal user reads the feed through its durable consumer and is
// refused everything else, the ops user may call the API and nothing else, and
// the resultgate user itself may not purge or delete a stream nor subscribe to
// the feed. Each refusal is asserted by the exact error the client receives, and
// the server must have logged exactly those violations and no other, also
// through resultgate's shutdown.
func TestPermissionsClusterMode(t *testing.T) {
	if testing.Short() {
		t.Skip("three-node cluster test; skipped with -short")
	}
	slog := &serverLog{}
	srvs := startPermissionsCluster(t, 3, slog)

	keyFile := filepath.Join(t.TempDir(), "partition.key")
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, key, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := clusterAppConfig(t, userURL(srvs, "resultgate", permResultgatePW), keyFile)
	cfg.Intake.Partitions = 2
	// Notification delivery, every kind to one webhook that works and one
	// that refuses: its consumers on NOTIFY, DEAD and AUDIT, their acks and
	// the parking of what the second refuses (notify_failures) run with the
	// resultgate user's rights.
	kinds := make(chan string, 64)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case kinds <- r.Header.Get(bus.HeaderNotifyKind):
		default:
		}
	}))
	t.Cleanup(hook.Close)
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusForbidden)
	}))
	t.Cleanup(refusing.Close)
	secret := testutil.WriteFile(t, t.TempDir(), "hook.secret", []byte("perm-secret"))
	ncfg, err := config.Parse([]byte("notify:\n  max_attempts: 1\n  receivers:\n" +
		"    - {name: hook, type: webhook, webhook: {url: \"" + hook.URL + "\", hmac_secret_file: \"" + secret + "\"}}\n" +
		"    - {name: refusing, type: webhook, webhook: {url: \"" + refusing.URL + "\", hmac_secret_file: \"" + secret + "\"}}\n" +
		"  routes: [{receivers: [hook, refusing]}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Extra[config.SectionNotify] = ncfg.Extra[config.SectionNotify]
	appLog := &testutil.SyncBuffer{}
	a := New(cfg, zerolog.New(appLog).Level(zerolog.WarnLevel))
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := a.Start(ctx); err != nil {
		t.Fatalf("starting resultgate as user resultgate: %v\nserver violations: %q", err, slog.violations())
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = a.Stop(ctx)
	})

	// The operator creates the portal's durable consumer as admin.
	admin := connectAs(t, srvs, "admin", permAdminPW, "")
	ajs, err := jetstream.New(admin.nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ajs.CreateOrUpdateConsumer(ctx, bus.StreamPortal, jetstream.ConsumerConfig{
		Durable: "portal-feed", FilterSubject: "portal.fhir.>",
		AckPolicy: jetstream.AckExplicitPolicy, DeliverPolicy: jetstream.DeliverAllPolicy,
	}); err != nil {
		t.Fatalf("admin creating portal-feed: %v", err)
	}
	ops := connectAs(t, srvs, "ops", permOpsPW, "_INBOX_ops")

	// A patient's Consent, put through the request/reply API by ops.
	consent, err := os.ReadFile(filepath.Join(testutil.RepoRoot(t), "testdata", "consent", "until-clinician-review.json"))
	if err != nil {
		t.Fatal(err)
	}
	ops.api(t, "consent.put", pipeline.ConsentPut{Consent: consent, Patient: "MRN-E2E-CON1^^^GENHOSP", By: "patient"}, nil)

	// Intake over MLLP: a routine panel (released at once), pathology held by
	// the Kentucky preset, pathology the Consent also holds, pathology whose
	// statute deadline is a few seconds away, and an ADT the intake refuses
	// (AR, dead-lettered).
	deadline := time.Now().Add(8 * time.Second).Truncate(time.Second)
	addr := a.MLLPAddr().String()
	for _, m := range []struct{ id, kind string }{
		{"LAB1", "lab"}, {"PATH1", "held"}, {"PATH2", "held"}, {"PATH3", "held"}, {"CON1", "held"}, {"DL1", "deadline"},
	} {
		sendUntilAA(t, addr, clusterORU(m.kind, m.id, deadline), m.id)
	}
	adt := strings.Replace(string(msg(labORU, "ADT1")), "ORU^R01^ORU_R01", "ADT^A01^ADT_A01", 1)
	if code := sendOnce(t, addr, []byte(adt)); code != "AR" {
		t.Fatalf("ADT answered %q, want AR", code)
	}

	var holds map[string]*hold.Hold
	testutil.Eventually(t, 30*time.Second, "five holds", func() bool {
		holds, err = holdsByControlID(ajs)
		return err == nil && len(holds) == 5
	})
	if !holds["CON1"].HasBasis("patient-request") || !holds["PATH1"].HasBasis("state-law") {
		t.Fatalf("bases: CON1 %+v, PATH1 %+v; want patient-request and state-law", holds["CON1"].Bases, holds["PATH1"].Bases)
	}

	// Releases: PATH1 through the Go API, PATH2 through the request/reply API.
	if _, err := a.Service().Acknowledge(ctx, holds["PATH1"].ID, pipeline.AckRequest{By: "D001", Note: "Dr Delta will call you."}); err != nil {
		t.Fatalf("releasing PATH1: %v", err)
	}
	ops.api(t, "holds.release", api.ReleaseAPIRequest{ID: holds["PATH2"].ID, AckRequest: pipeline.AckRequest{By: "D001"}}, nil)

	// API reads as ops: the open holds, the dead letter, an audit trail.
	var open []hold.Hold
	testutil.Eventually(t, 15*time.Second, "PATH3 and CON1 the only open holds of D001", func() bool {
		open = nil
		ops.api(t, "holds.list", holdview.Filter{Provider: "D001", State: hold.StateHeld}, &open)
		ids := map[string]bool{}
		for _, h := range open {
			ids[h.Inbound.ControlID] = true
		}
		return ids["PATH3"] && ids["CON1"] && !ids["PATH1"] && !ids["PATH2"] && !ids["LAB1"]
	})
	var dead []dead.Record
	ops.api(t, "dead.list", api.DeadListRequest{}, &dead)
	if len(dead) != 1 || dead[0].Reason != string(intake.ReasonType) {
		t.Errorf("dead letters %+v, want one of reason %q", dead, intake.ReasonType)
	}
	var trail []json.RawMessage
	ops.api(t, "audit.query", audit.Query{HoldID: holds["PATH2"].ID}, &trail)
	if len(trail) < 2 {
		t.Errorf("audit trail of PATH2 has %d events, want its hold and its release", len(trail))
	}

	// The deadline scheduler releases DL1; everything released is in the feed.
	testutil.Eventually(t, 30*time.Second, "DL1 released at its deadline, all released results in the feed", func() bool {
		hs, err := holdsByControlID(ajs)
		if err != nil || hs["DL1"].State != hold.StateReleased {
			return false
		}
		_, fhir, err := portalByControlID(ajs)
		return err == nil && fhir["LAB1"] == 1 && fhir["PATH1"] == 1 && fhir["PATH2"] == 1 && fhir["DL1"] == 1
	})
	holds, err = holdsByControlID(ajs)
	if err != nil {
		t.Fatal(err)
	}
	if h := holds["DL1"]; h.Release.Path != hold.PathDeadline {
		t.Errorf("DL1 release path %q, want %q", h.Release.Path, hold.PathDeadline)
	}

	// The hold notifications and the dead letter reached the webhook.
	notified := map[string]bool{}
	testutil.Eventually(t, 30*time.Second, "hold-created and dead-letter notices delivered", func() bool {
		for {
			select {
			case k := <-kinds:
				notified[k] = true
				continue
			default:
			}
			return notified[bus.NotifyHoldCreated] && notified["dead-letter"]
		}
	})
	testutil.Eventually(t, 30*time.Second, "the refused notices parked", func() bool {
		fs, err := deliver.Failures(ctx, ajs)
		return err == nil && len(fs) >= 2
	})

	// Everything resultgate did was allowed.
	if v := slog.violations(); len(v) != 0 {
		t.Fatalf("the server reported %d permission violations for resultgate's flow:\n%s", len(v), strings.Join(v, "\n"))
	}
	if l := appLog.String(); strings.Contains(l, "permissions violation") || strings.Contains(l, "NATS async error") {
		t.Fatalf("resultgate logged NATS errors:\n%s", l)
	}
	admin.noErrors(t, "admin")
	ops.noErrors(t, "ops")

	// The portal reads the feed through portal-feed and acks it.
	portal := connectAs(t, srvs, "portal", permPortalPW, "_INBOX_portal")
	pjs, err := jetstream.New(portal.nc)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := pjs.Consumer(ctx, bus.StreamPortal, "portal-feed")
	if err != nil {
		t.Fatalf("portal looking up portal-feed: %v", err)
	}
	got := map[string]int{}
	for n := 0; n < 4; {
		batch, err := cons.Fetch(4-n, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatalf("portal fetch: %v", err)
		}
		k := 0
		for m := range batch.Messages() {
			k++
			got[m.Headers().Get(bus.HeaderControlID)]++
			if !strings.HasPrefix(m.Subject(), bus.SubjectPortalFHIRPrefix) {
				t.Errorf("portal-feed delivered %s", m.Subject())
			}
			if err := m.DoubleAck(ctx); err != nil {
				t.Fatalf("portal ack: %v", err)
			}
		}
		if err := batch.Error(); err != nil {
			t.Fatalf("portal fetch: %v", err)
		}
		if k == 0 {
			t.Fatalf("portal fetched %v, want LAB1, PATH1, PATH2, DL1", got)
		}
		n += k
	}
	if len(got) != 4 || got["LAB1"] != 1 || got["PATH1"] != 1 || got["PATH2"] != 1 || got["DL1"] != 1 {
		t.Fatalf("portal received %v, want LAB1, PATH1, PATH2, DL1 once each (PATH3 and CON1 are held)", got)
	}
	ci, err := ajs.Consumer(ctx, bus.StreamPortal, "portal-feed")
	if err != nil {
		t.Fatal(err)
	}
	info, err := ci.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.NumAckPending != 0 || info.NumPending != 0 || info.AckFloor.Consumer != 4 {
		t.Errorf("portal-feed after the portal's acks: %d ack pending, %d pending, ack floor %d; want 0, 0, 4",
			info.NumAckPending, info.NumPending, info.AckFloor.Consumer)
	}
	portal.noErrors(t, "portal fetch and ack")

	portalMsgs := func() uint64 {
		s, err := ajs.Stream(ctx, bus.StreamPortal)
		if err != nil {
			t.Fatal(err)
		}
		i, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return i.State.Msgs
	}
	before := portalMsgs()
	holdKey := holds["PATH3"].ID
	publish := func(subj string) func(*nats.Conn) error {
		return func(nc *nats.Conn) error { return nc.PublishRequest(subj, nc.NewRespInbox(), []byte("{}")) }
	}
	subscribe := func(subj string) func(*nats.Conn) error {
		return func(nc *nats.Conn) error { _, err := nc.SubscribeSync(subj); return err }
	}
	// A second connection with resultgate's credentials (not the daemon's):
	// the user may not delete or purge streams, nor subscribe to the feed.
	rgTool := connectAs(t, srvs, "resultgate", permResultgatePW, "")
	refusals := 0
	for _, c := range []struct {
		name string
		who  *permClient
		do   func(*nats.Conn) error
		want string
	}{
		{"portal asks the holds API", portal, publish("resultgate.api.holds.list"), pubErr("resultgate.api.holds.list")},
		{"portal asks HL7_IN's stream info", portal, publish("$JS.API.STREAM.INFO.HL7_IN"), pubErr("$JS.API.STREAM.INFO.HL7_IN")},
		{"portal subscribes to the inbound messages", portal, subscribe("hl7.in.>"), subErr("hl7.in.>")},
		{"portal looks up the holds bucket", portal, publish("$JS.API.STREAM.INFO.KV_holds"), pubErr("$JS.API.STREAM.INFO.KV_holds")},
		{"portal reads a hold record", portal, publish("$JS.API.DIRECT.GET.KV_holds.$KV.holds." + holdKey), pubErr("$JS.API.DIRECT.GET.KV_holds.$KV.holds." + holdKey)},
		{"portal watches the holds bucket", portal, subscribe("$KV.holds.>"), subErr("$KV.holds.>")},
		{"portal publishes into the feed", portal, publish("portal.fhir.p0"), pubErr("portal.fhir.p0")},
		{"portal creates its own consumer", portal, publish("$JS.API.CONSUMER.CREATE.PORTAL.mine"), pubErr("$JS.API.CONSUMER.CREATE.PORTAL.mine")},
		{"portal reads other users' replies", portal, subscribe("_INBOX.>"), subErr("_INBOX.>")},
		{"ops asks HL7_IN's stream info", ops, publish("$JS.API.STREAM.INFO.HL7_IN"), pubErr("$JS.API.STREAM.INFO.HL7_IN")},
		{"ops subscribes to the inbound messages", ops, subscribe("hl7.in.>"), subErr("hl7.in.>")},
		{"ops injects an inbound message", ops, publish("hl7.in.p0"), pubErr("hl7.in.p0")},
		{"ops reads the portal feed", ops, publish("$JS.API.CONSUMER.MSG.NEXT.PORTAL.portal-feed"), pubErr("$JS.API.CONSUMER.MSG.NEXT.PORTAL.portal-feed")},
		{"ops reads other users' replies", ops, subscribe("_INBOX.>"), subErr("_INBOX.>")},
		{"resultgate user purges AUDIT", rgTool, publish("$JS.API.STREAM.PURGE.AUDIT"), pubErr("$JS.API.STREAM.PURGE.AUDIT")},
		{"resultgate user deletes HL7_IN", rgTool, publish("$JS.API.STREAM.DELETE.HL7_IN"), pubErr("$JS.API.STREAM.DELETE.HL7_IN")},
		{"resultgate user reads the feed as the portal", rgTool, subscribe("portal.>"), subErr("portal.>")},
		// The audit trail: serve's credentials cannot shorten, reconfigure
		// or delete it (issue 15 point 3b).
		{"resultgate user updates AUDIT", rgTool, publish("$JS.API.STREAM.UPDATE.AUDIT"), pubErr("$JS.API.STREAM.UPDATE.AUDIT")},
		{"resultgate user deletes AUDIT", rgTool, publish("$JS.API.STREAM.DELETE.AUDIT"), pubErr("$JS.API.STREAM.DELETE.AUDIT")},
		{"resultgate user deletes an audit event", rgTool, publish("$JS.API.STREAM.MSG.DELETE.AUDIT"), pubErr("$JS.API.STREAM.MSG.DELETE.AUDIT")},
		{"resultgate user updates the audit checkpoints", rgTool, publish("$JS.API.STREAM.UPDATE.KV_audit_checkpoints"), pubErr("$JS.API.STREAM.UPDATE.KV_audit_checkpoints")},
		{"resultgate user deletes the audit checkpoints", rgTool, publish("$JS.API.STREAM.DELETE.KV_audit_checkpoints"), pubErr("$JS.API.STREAM.DELETE.KV_audit_checkpoints")},
	} {
		c.who.refused(t, c.name, c.do, c.want)
		refusals++
	}

	// The high-level client gets no answer where the server refused the request.
	sctx, scancel := context.WithTimeout(ctx, time.Second)
	_, err = pjs.Stream(sctx, bus.StreamHL7In)
	scancel()
	if err == nil {
		t.Error("portal got HL7_IN's stream info")
	}
	select {
	case e := <-portal.errs:
		if want := pubErr("$JS.API.STREAM.INFO.HL7_IN"); e.Error() != want {
			t.Errorf("portal jetstream Stream(HL7_IN): error %q, want %q", e, want)
		}
	case <-time.After(5 * time.Second):
		t.Error("portal jetstream Stream(HL7_IN): no permission error")
	}
	refusals++

	// The same through the JetStream API, as the probe did it: UpdateStream
	// MaxMsgs=1 and DeleteStream on AUDIT with serve's credentials get no
	// answer but the server's refusal, and AUDIT is unchanged.
	rgjs, err := jetstream.New(rgTool.nc)
	if err != nil {
		t.Fatal(err)
	}
	auditCfg := func() jetstream.StreamConfig {
		s, err := ajs.Stream(ctx, bus.StreamAudit)
		if err != nil {
			t.Fatalf("AUDIT: %v", err)
		}
		return s.CachedInfo().Config
	}
	shrunk := auditCfg()
	shrunk.MaxMsgs = 1
	for name, do := range map[string]func(context.Context) error{
		"UpdateStream": func(c context.Context) error { _, err := rgjs.UpdateStream(c, shrunk); return err },
		"DeleteStream": func(c context.Context) error { return rgjs.DeleteStream(c, bus.StreamAudit) },
	} {
		sctx, scancel := context.WithTimeout(ctx, time.Second)
		err := do(sctx)
		scancel()
		if err == nil {
			t.Errorf("resultgate user: %s on AUDIT succeeded", name)
		}
		select {
		case e := <-rgTool.errs:
			if !strings.Contains(e.Error(), "Permissions Violation for Publish to \"$JS.API.STREAM.") {
				t.Errorf("resultgate user %s on AUDIT: error %q", name, e)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("resultgate user %s on AUDIT: no permission error", name)
		}
		refusals++
	}
	if got := auditCfg(); got.MaxMsgs != -1 || !got.DenyDelete || !got.DenyPurge {
		t.Errorf("AUDIT after the refused attempts: max_msgs %d deny_delete %v deny_purge %v", got.MaxMsgs, got.DenyDelete, got.DenyPurge)
	}
	// The trail serve wrote on R3 is chained and matches its signed
	// checkpoint; serve's own credentials may verify it.
	rep, err := audit.Verify(ctx, rgjs, audit.CheckOptions{Key: audit.CheckpointKey(key)})
	if err != nil {
		t.Fatalf("verifying the audit trail as the resultgate user: %v", err)
	}
	if len(rep.Findings) != 0 || rep.Chained == 0 || rep.Chained != rep.Msgs || rep.Checkpoint == nil || !rep.CheckpointSigned {
		t.Errorf("audit trail on the cluster: findings %v, %d chained of %d, checkpoint %+v signed %v",
			rep.Findings, rep.Chained, rep.Msgs, rep.Checkpoint, rep.CheckpointSigned)
	}

	if after := portalMsgs(); after != before {
		t.Errorf("PORTAL has %d messages after the refusals, %d before", after, before)
	}
	// resultgate shuts down (its ordered consumers and watchers end) still
	// without a violation.
	sctx, scancel = context.WithTimeout(ctx, 25*time.Second)
	if err := a.Stop(sctx); err != nil {
		t.Errorf("stopping resultgate: %v", err)
	}
	scancel()
	if l := appLog.String(); strings.Contains(l, "permissions violation") || strings.Contains(l, "NATS async error") {
		t.Errorf("resultgate logged NATS errors:\n%s", l)
	}
	// Every violation the server logged is one of the refusals above, made by
	// a test connection (named perm-test-<user>); none is the daemon's.
	v := slog.violations()
	for _, l := range v {
		if !strings.Contains(l, ":go:perm-test-") {
			t.Errorf("violation not by one of the test's connections: %s", l)
		}
	}
	if len(v) != refusals {
		t.Errorf("server logged %d violations, want %d:\n%s", len(v), refusals, strings.Join(v, "\n"))
	}
	if len(v) > 0 {
		t.Logf("%d refusals, each logged once by the server; e.g. %s", refusals, v[0])
	}
}

// sendOnce sends m over MLLP and returns the acknowledgement code.
func sendOnce(t *testing.T, addr string, m []byte) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl, err := mllp.Dial(ctx, mllp.ClientConfig{Addr: addr, AckTimeout: 15 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ack, err := cl.Send(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	return loadgen.AckCode(ack)
}

// TestPermissionsDocumented checks that docs/OPERATIONS.md shows the tested
// configuration verbatim, so the documented permissions are the tested ones.
func TestPermissionsDocumented(t *testing.T) {
	root := testutil.RepoRoot(t)
	conf, err := os.ReadFile(filepath.Join(root, "testdata", "nats", "permissions.conf"))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join(root, "docs", "OPERATIONS.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(doc, append([]byte("```\n"), conf...)) {
		t.Error("docs/OPERATIONS.md does not include testdata/nats/permissions.conf verbatim (section \"NATS subject permissions\")")
	}
}
