package app

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/resultgate/resultgate/internal/testutil"
	"github.com/resultgate/resultgate/router/hold"
	"github.com/resultgate/resultgate/router/holdview"
)

// labFor is the routine chemistry panel with control ID id, filler number
// filler (with its namespace, "FLNU4^PATHSYS", or without), patient mrn and
// sending facility (MSH-4).
func labFor(id, filler, mrn, facility string) []byte {
	s := string(msg(labORU, id))
	s = strings.ReplaceAll(s, "FL-"+id, filler)
	s = strings.ReplaceAll(s, "MRN-E2E-"+id, mrn)
	s = strings.Replace(s, "|LIS|SYNLAB|", "|LIS|"+facility+"|", 1)
	return []byte(s)
}

// holdFor waits for the hold of control ID id and returns its ID.
func (e *apiEnv) holdFor(t *testing.T, id string) string {
	t.Helper()
	var holdID string
	testutil.Eventually(t, 15*time.Second, "hold for "+id, func() bool {
		hs, _ := e.app.Service().ListHolds(context.Background(), holdview.Filter{State: hold.StateHeld})
		for _, h := range hs {
			if h.Inbound.ControlID == id {
				holdID = h.ID
				return true
			}
		}
		return false
	})
	return holdID
}

// TestDeterminationsOverMLLPAndHTTP is the scenario end to end
// (MLLP intake, embedded NATS, HTTP API): Dr Echo (D002) places a
// determination on FLNU4 of PATHSYS; FLNU4^PATHSYS for MRN8888 is held on it
// and FLNU4^OTHERLAB from another facility for MRN9999 reaches the feed.
// The ordering provider (Dr Delta, D001) cannot release it (409), Dr Echo
// lists it and releases it (200), and a second determination is withdrawn
// by on-call after Dr Delta is refused (403).
func TestDeterminationsOverMLLPAndHTTP(t *testing.T) {
	const jsonCT = "application/json"
	e := newAPIEnv(t)
	js := e.app.JetStream()

	r := e.do(t, "other", "POST", "/api/orders/FLNU4/hold", jsonCT, []byte(`{"reason":"risk of self-harm"}`))
	if r.status != 400 || r.body["error"] != "bad_request" || !strings.Contains(r.raw, "issuer") {
		t.Fatalf("place without issuer: %d %s", r.status, r.raw)
	}
	r = e.do(t, "other", "POST", "/api/orders/FLNU4/hold", jsonCT, []byte(`{"issuer":"PATHSYS","reason":"risk of self-harm","harm_type":"life-or-physical-safety","review":"2099-01-31"}`))
	if r.status != 201 {
		t.Fatalf("place: %d %s", r.status, r.raw)
	}
	detID, _ := r.body["id"].(string)
	if detID == "" || r.body["by"] != "D002" || r.body["issuer"] != "PATHSYS" || r.body["reason"] != "risk of self-harm" ||
		r.body["harm_type"] != "life-or-physical-safety" || r.body["review"] != "2099-01-31T00:00:00Z" || r.body["state"] != "active" || r.body["hold_state"] != nil ||
		r.body["scope"] != "results of order FLNU4 issued by PATHSYS, for the patient of the order's result" {
		t.Fatalf("placed determination: %s", r.raw)
	}

	sendAll(t, e.app.MLLPAddr().String(),
		labFor("DET1", "FLNU4^PATHSYS", "MRN8888", "SYNLAB"),
		labFor("DET2", "FLNU4^OTHERLAB", "MRN9999", "OTHERLAB"))
	held := e.holdFor(t, "DET1")
	testutil.Eventually(t, 15*time.Second, "the other issuer's result in the feed", func() bool {
		n, _, _ := feed(t, js, "portal.hl7.", "DET2")
		return n == 1
	})
	if n, _, _ := feed(t, js, "portal.hl7.", "DET1"); n != 0 {
		t.Fatalf("held result in the feed %d times", n)
	}

	r = e.do(t, "other", "GET", "/api/determinations", "", nil)
	if r.status != 200 || r.body["total"] != float64(1) {
		t.Fatalf("Dr Echo's list: %d %s", r.status, r.raw)
	}
	r = e.do(t, "clinician", "GET", "/api/determinations", "", nil)
	if r.status != 200 || r.body["total"] != float64(0) {
		t.Fatalf("Dr Delta's list: %d %s", r.status, r.raw)
	}
	if r = e.do(t, "compliance", "GET", "/api/determinations", "", nil); r.status != 403 {
		t.Fatalf("compliance list: %d", r.status)
	}

	r = e.do(t, "clinician", "POST", "/api/holds/"+held+"/release", jsonCT, []byte(`{}`))
	if r.status != 409 || !strings.Contains(r.raw, "D002") {
		t.Fatalf("release by the ordering provider: %d %s", r.status, r.raw)
	}
	r = e.do(t, "other", "POST", "/api/holds/"+held+"/release", jsonCT, []byte(`{"reason":"discussed with the patient"}`))
	if r.status != 200 || r.body["state"] != "released" {
		t.Fatalf("release by the placing clinician: %d %s", r.status, r.raw)
	}
	testutil.Eventually(t, 15*time.Second, "released result in the feed", func() bool {
		n, _, _ := feed(t, js, "portal.hl7.", "DET1")
		return n == 1
	})
	r = e.do(t, "oncall", "GET", "/api/determinations?state=released", "", nil)
	if r.status != 200 || r.body["total"] != float64(1) {
		t.Fatalf("released determinations: %d %s", r.status, r.raw)
	}

	r = e.do(t, "other", "POST", "/api/orders/FLNU5/hold", jsonCT, []byte(`{"issuer":"PATHSYS","patient":"MRN8888","reason":"discuss first"}`))
	if r.status != 201 {
		t.Fatalf("second place: %d %s", r.status, r.raw)
	}
	second, _ := r.body["id"].(string)
	if r = e.do(t, "clinician", "POST", "/api/determinations/"+second+"/withdraw", jsonCT, []byte(`{"reason":"not mine"}`)); r.status != 403 {
		t.Fatalf("withdraw by another clinician: %d %s", r.status, r.raw)
	}
	if r = e.do(t, "oncall", "POST", "/api/determinations/"+second+"/withdraw", jsonCT, []byte(`{}`)); r.status != 422 {
		t.Fatalf("withdraw without reason: %d %s", r.status, r.raw)
	}
	r = e.do(t, "oncall", "POST", "/api/determinations/"+second+"/withdraw", jsonCT, []byte(`{"reason":"reviewed with the team"}`))
	if r.status != 200 || !strings.Contains(r.raw, `"state":"withdrawn"`) {
		t.Fatalf("on-call withdraw: %d %s", r.status, r.raw)
	}
	if r = e.do(t, "oncall", "POST", "/api/determinations/"+second+"/withdraw", jsonCT, []byte(`{"reason":"again"}`)); r.status != 409 {
		t.Fatalf("second withdraw: %d %s", r.status, r.raw)
	}
	if r = e.do(t, "oncall", "POST", "/api/determinations/dnone/withdraw", jsonCT, []byte(`{"reason":"r"}`)); r.status != 404 {
		t.Fatalf("unknown determination: %d %s", r.status, r.raw)
	}
}
