package app

import (
	"testing"
	"time"

	"github.com/resultgate/resultgate/internal/testutil"
)

// TestAPIReleases: what went out to the patient feed is listed over HTTP for
// compliance and admin (not for clinicians), filtered by path, and the read
// is audited; results still held are not listed.
func TestAPIReleases(t *testing.T) {
	e := newAPIEnv(t)
	held := e.heldPathology(t, "RELS1")
	sendAll(t, e.app.MLLPAddr().String(), msg(labORU, "RELSLAB1"), msg(labORU, "RELSLAB2"))
	var r apiResp
	testutil.Eventually(t, 10*time.Second, "two immediate releases listed", func() bool {
		r = e.do(t, "compliance", "GET", "/api/releases?path=immediate", "", nil)
		recs, _ := r.body["releases"].([]any)
		return r.status == 200 && len(recs) == 2
	})
	for _, x := range r.body["releases"].([]any) {
		rec := x.(map[string]any)
		if rec["path"] != "immediate" || rec["hold_id"] == held || rec["control_id"] == "" || rec["released_at"] == "" {
			t.Errorf("release record %v", rec)
		}
		if _, ok := rec["data"]; ok {
			t.Errorf("release record carries content: %v", rec)
		}
	}
	if r := e.do(t, "compliance", "GET", "/api/releases?path=acknowledged", "", nil); r.status != 200 || len(r.body["releases"].([]any)) != 0 {
		t.Errorf("acknowledged releases before any: %d %s", r.status, r.raw)
	}
	if r := e.do(t, "clinician", "GET", "/api/releases", "", nil); r.status != 403 {
		t.Errorf("clinician: %d, want 403", r.status)
	}
	if r := e.do(t, "compliance", "GET", "/api/releases?path=whenever", "", nil); r.status != 400 {
		t.Errorf("bad path: %d, want 400", r.status)
	}
	a := e.do(t, "compliance", "GET", "/api/audit?since=1h", "", nil)
	found := false
	for _, x := range a.body["events"].([]any) {
		if ev := x.(map[string]any); ev["action"] == "releases.read" {
			found = true
		}
	}
	if !found {
		t.Error("the releases read is not in the audit trail")
	}
}
