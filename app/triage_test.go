package app

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/resultgate/resultgate/internal/testutil"
	"github.com/resultgate/resultgate/router/audit"
	"github.com/resultgate/resultgate/router/bus"
	"github.com/resultgate/resultgate/router/dead"
	"github.com/resultgate/resultgate/router/notify"
)

// An ORU whose PID-3 names no patient, sent over MLLP to a running
// resultgate: the sender gets AA (it is stored), nothing reaches the portal
// feed, on-call is notified and finds it in GET /api/triage (a clinician may
// not), discards it with a reason (audited with their name and role) and the
// list is empty again; a normal result sent beside it is released.
func TestUnattributedResultTriageOverMLLPAndHTTP(t *testing.T) {
	e := newAPIEnv(t)
	js := e.app.JetStream()
	noPID := strings.Replace(string(msg(labORU, "NOPID1")), "PID|1||MRN-E2E-NOPID1^^^GENHOSP^MR|", "PID|1||^^^GENHOSP^MR|", 1)
	if strings.Contains(noPID, "MRN-E2E-NOPID1") {
		t.Fatal("the template's PID-3 was not emptied")
	}
	sendAll(t, e.app.MLLPAddr().String(), []byte(noPID), msg(labORU, "NORMAL1"))

	testutil.Eventually(t, 15*time.Second, "normal result on the feed", func() bool {
		n, _, _ := feed(t, js, "portal.hl7.", "NORMAL1")
		return n == 1
	})
	var recs []dead.Record
	testutil.Eventually(t, 15*time.Second, "triage record listed for on-call", func() bool {
		r := e.do(t, "oncall", "GET", "/api/triage", "", nil)
		recs = nil
		return r.status == 200 && json.Unmarshal([]byte(r.raw), &recs) == nil && len(recs) == 1
	})
	rec := recs[0]
	if rec.Reason != bus.DeadUnattributed || rec.ControlID != "NOPID1" || rec.SendingApplication != "LIS" || rec.SendingFacility != "SYNLAB" || rec.Discarded != nil {
		t.Fatalf("triage record %+v", rec)
	}
	if n, _, _ := feed(t, js, "portal.", "NOPID1"); n != 0 {
		t.Fatalf("%d feed messages for the unattributed result", n)
	}
	if r := e.do(t, "clinician", "GET", "/api/triage", "", nil); r.status != 403 {
		t.Errorf("clinician GET /api/triage: %d", r.status)
	}

	ctx := testutil.Ctx(t)
	notices, err := bus.ReadAll(ctx, js, bus.StreamNotify, jetstream.OrderedConsumerConfig{FilterSubjects: []string{bus.SubjectNotifyOnCall}}, 100,
		func(m jetstream.Msg, _ uint64) (notify.TriageNotice, error) {
			var n notify.TriageNotice
			return n, json.Unmarshal(m.Data(), &n)
		})
	if err != nil {
		t.Fatal(err)
	}
	if len(notices) != 1 || notices[0].Kind != bus.NotifyTriage || notices[0].DeadSeq != rec.Seq || notices[0].ControlID != "NOPID1" {
		t.Fatalf("on-call notices %+v", notices)
	}
	if strings.Contains(string(mustJSON(t, notices[0])), "TESTPATIENT") {
		t.Errorf("the notice carries message content")
	}

	path := "/api/triage/" + itoa(rec.Seq) + "/discard"
	if r := e.do(t, "oncall", "POST", path, "application/json", []byte(`{"reason":" "}`)); r.status != 422 {
		t.Errorf("discard without a reason: %d %s", r.status, r.raw)
	}
	if r := e.do(t, "oncall", "POST", "/api/triage/99999/discard", "application/json", []byte(`{"reason":"x"}`)); r.status != 404 {
		t.Errorf("discard of a missing record: %d %s", r.status, r.raw)
	}
	r := e.do(t, "oncall", "POST", path, "application/json", []byte(`{"reason":"LIS resent it with the MRN"}`))
	if r.status != 200 {
		t.Fatalf("discard: %d %s", r.status, r.raw)
	}
	if r := e.do(t, "oncall", "GET", "/api/triage", "", nil); r.status != 200 || strings.TrimSpace(r.raw) != "[]" {
		t.Errorf("triage after the discard: %d %s", r.status, r.raw)
	}
	evs, err := e.app.Service().Audit(context.Background(), audit.Query{Kinds: []string{bus.AuditDiscard}})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Actor != "Dr Night" || evs[0].Role != "oncall" || evs[0].DeadSeq != rec.Seq || evs[0].Reason != "LIS resent it with the MRN" {
		t.Fatalf("discard audit events %+v", evs)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func itoa(n uint64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
