package pipeline

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/resultgate/resultgate/internal/testutil"
	"github.com/resultgate/resultgate/policy"
	"github.com/resultgate/resultgate/router/audit"
	"github.com/resultgate/resultgate/router/bus"
	"github.com/resultgate/resultgate/router/feed"
	"github.com/resultgate/resultgate/router/hold"
)

// Users of startJSNoHoldWrites's server.
const (
	gateUser, gatePass     = "gate", "gate-test-password"
	doomedUser, doomedPass = "doomed", "doomed-test-password"
)

// startJSNoHoldWrites starts a JetStream server on loopback with two users:
// gate may do anything (the returned connection is gate's, the streams are
// ensured); doomed may do anything but write a hold record (publish to
// $KV.holds.>). An instance connected as doomed does everything the classify
// step does up to writing a hold, and stops there, as a process that dies at
// that instant would; its write never reaches the store.
func startJSNoHoldWrites(t *testing.T) *testutil.JS {
	t.Helper()
	dir := t.TempDir()
	srv, err := server.NewServer(&server.Options{
		ServerName: "crash-window", Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true,
		JetStream: true, StoreDir: dir,
		Users: []*server.User{
			{Username: gateUser, Password: gatePass},
			{Username: doomedUser, Password: doomedPass, Permissions: &server.Permissions{
				Publish: &server.SubjectPermission{Deny: []string{"$KV." + bus.KVHolds + ".>"}},
			}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS server not ready")
	}
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	nc, err := nats.Connect(srv.ClientURL(), nats.UserInfo(gateUser, gatePass))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.EnsureStreams(testutil.Ctx(t), js, bus.StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	return &testutil.JS{Srv: srv, NC: nc, JS: js, Dir: dir}
}

// TestRetractionThenCrashBeforeHold: with the production policy, a benign
// pathology report is released; the patient asks for clinician review; the
// lab's correction shows a carcinoma. The instance that takes the correction
// publishes the retraction of the released version to both feeds and dies
// before the correction's hold is written or the inbound message acked. A
// restarted instance runs the step again: each feed still has exactly one
// retraction (the same Msg-Ids, absorbed by the PORTAL stream), the
// correction is held once (one decision event, one clinician notification),
// and the clinician's release publishes it after the retraction.
func TestRetractionThenCrashBeforeHold(t *testing.T) {
	pc, err := policy.DecodeConfig([]byte("time_zone: UTC\n"))
	if err != nil {
		t.Fatal(err)
	}
	pol, err := NewDefaultPolicy(pc)
	if err != nil {
		t.Fatal(err)
	}
	e := newPipeEnvOn(t, startJSNoHoldWrites(t), func(c *Config) {
		c.Policy = pol
		c.FHIR = feed.NewFHIREncoder(time.UTC, "", true)
		// The doomed instance's hold write waits for a reply that never
		// comes until AckWait; a redelivery then goes to the restarted
		// instance within a second. No attempt may reach the dead-letter
		// bound meanwhile.
		c.Holds.AckWait = time.Second
		c.Holds.MaxDeliver = 1000
	})
	oru := func(ctrl, status, text string) []byte {
		return []byte("MSH|^~\\&|LIS|SYNTH LAB|PORTAL|HOSP|20260302080000||ORU^R01^ORU_R01|" + ctrl + "|P|2.5.1\r" +
			"PID|1||MRN0001^^^GENHOSP^MR||TESTPATIENT^ALPHA||19700101|F\r" +
			"OBR|1|PL-9|FIL-900^SYNTH LAB|88305^Surgical pathology^CPT|||20260301120000|||||||||D001^DOCTOR^DELTA||||||20260302070000||SP|" + status + "\r" +
			"OBX|1|TX|22637-3^Path report.final diagnosis^LN||" + text + "||||||" + status + "\r")
	}
	released := hold.HoldID(pipeSecret, "LIS|SYNTH LAB|RV-1")
	corrID := hold.HoldID(pipeSecret, "LIS|SYNTH LAB|RV-2")

	// Before: the benign version released, the patient's Consent on file.
	first := e.start()
	s := first.Service()
	publishRaw(t, e, "LIS|SYNTH LAB|RV-1", oru("RV-1", "F", "Benign fibroadipose tissue."))
	testutil.Eventually(t, 10*time.Second, "benign version released", func() bool {
		return len(e.portal("portal.hl7.>")) == 1 && len(e.portal("portal.fhir.>")) == 1
	})
	put := ConsentPut{Consent: readTestdata(t, "consent/until-clinician-review.json"), Patient: "MRN0001", By: "patient"}
	if _, err := s.PutConsent(testutil.Ctx(t), put); err != nil {
		t.Fatalf("PutConsent: %v", err)
	}
	if err := first.Stop(testutil.Ctx(t)); err != nil {
		t.Fatal(err)
	}

	// The doomed instance takes the correction: the retraction reaches both
	// feeds, the hold is not written and the message is not acked.
	refused := make(chan error, 16)
	ncA, err := nats.Connect(e.js.Srv.ClientURL(), nats.UserInfo(doomedUser, doomedPass),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			select {
			case refused <- err:
			default:
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ncA.Close)
	doomed, err := New(ncA, e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := doomed.Start(testutil.Ctx(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = doomed.Stop(ctx) // its connection is gone; only release its goroutines
	})
	publishRaw(t, e, "LIS|SYNTH LAB|RV-2", oru("RV-2", "C", "Invasive ductal carcinoma, grade 2."))
	testutil.Eventually(t, 10*time.Second, "retraction on both feeds", func() bool {
		return len(e.portal("portal.hl7.>")) == 2 && len(e.portal("portal.fhir.>")) == 2
	})
	select {
	case err := <-refused:
		if !errors.Is(err, nats.ErrPermissionViolation) || !strings.Contains(err.Error(), "$KV."+bus.KVHolds+"."+corrID) {
			t.Fatalf("the doomed instance was refused %v, want its write of hold %s", err, corrID)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the doomed instance never tried to write the correction's hold")
	}
	if _, err := doomed.Service().GetHold(testutil.Ctx(t), corrID); !errors.Is(err, hold.ErrHoldNotFound) {
		t.Fatalf("the correction's hold exists before the crash (%v): the test does not reach the window", err)
	}
	ncA.Close() // the process dies: no hold record, no ack

	// The restart, a minute later (the step's clock has moved on, so only
	// stable IDs can make its outputs the same): the redelivery converges.
	e.clock.Advance(time.Minute)
	s = e.start().Service()
	corr := e.waitState(s, corrID, hold.StateHeld)
	e.waitSettled()
	for _, filter := range []string{"portal.hl7.>", "portal.fhir.>"} {
		msgs := e.portal(filter)
		if len(msgs) != 2 {
			t.Fatalf("%s has %d messages after the restart, want the release and one retraction", filter, len(msgs))
		}
		r := msgs[1].Header
		if r.Get(bus.HeaderReleasePath) != string(hold.PathRetraction) || r.Get(bus.HeaderRetracts) != released || r.Get(bus.HeaderHoldID) != corrID {
			t.Errorf("%s second message: path %q retracts %q hold %q; want the retraction of %s", filter,
				r.Get(bus.HeaderReleasePath), r.Get(bus.HeaderRetracts), r.Get(bus.HeaderHoldID), released)
		}
		if strings.Contains(string(msgs[1].Data), "carcinoma") {
			t.Errorf("%s retraction shows the held correction's content", filter)
		}
	}
	if len(corr.Transitions) != 1 || corr.Transitions[0].To != hold.StateHeld {
		t.Errorf("correction hold transitions %+v, want one: created held", corr.Transitions)
	}
	created := 0
	for _, n := range e.notifications("notify.>") {
		if n.HoldID == corrID {
			created++
		}
	}
	if created != 1 {
		t.Errorf("%d clinician notifications for the correction's hold, want 1", created)
	}
	evs, err := s.Audit(testutil.Ctx(t), audit.Query{HoldID: corrID})
	if err != nil {
		t.Fatal(err)
	}
	decisions := 0
	for _, ev := range evs {
		if ev.Kind == bus.AuditDecision {
			decisions++
		}
	}
	if decisions != 1 {
		t.Errorf("%d decision events for the correction, want 1: %+v", decisions, evs)
	}

	if _, err := s.Acknowledge(testutil.Ctx(t), corrID, AckRequest{By: corr.ProviderID}); err != nil {
		t.Fatalf("acknowledge: %v", err)
	}
	testutil.Eventually(t, 10*time.Second, "correction released after the retraction", func() bool {
		return len(e.portal("portal.hl7.>")) == 3 && len(e.portal("portal.fhir.>")) == 3
	})
	if got := e.portal("portal.hl7.>")[2]; got.Header.Get(bus.HeaderHoldID) != corrID || got.Header.Get(bus.HeaderRetracts) != "" ||
		!strings.Contains(string(got.Data), "carcinoma") {
		t.Errorf("third HL7 feed message is not the released correction: hold %q retracts %q", got.Header.Get(bus.HeaderHoldID), got.Header.Get(bus.HeaderRetracts))
	}
}
