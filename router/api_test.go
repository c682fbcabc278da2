package router

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/resultgate/resultgate/internal/testutil"
	"github.com/resultgate/resultgate/router/bus"
	"github.com/resultgate/resultgate/router/hold"
)

// TestAPIOverNATS drives the request/reply API as the CLI does.
func TestAPIOverNATS(t *testing.T) {
	e := newPipeEnv(t)
	e.start()
	c := APIClient{NC: e.js.NC, Timeout: 5 * time.Second}
	ctx := testutil.Ctx(t)

	consent, _ := json.Marshal(testConsent{Patient: "MRN1", Status: "active", Hold: true})
	var cres ConsentResult
	if err := c.Call(ctx, "consent.put", ConsentPut{Consent: consent, By: "patient"}, &cres); err != nil {
		t.Fatalf("consent.put: %v", err)
	}
	var rec ConsentRecord
	if err := c.Call(ctx, "consent.get", ConsentGetRequest{Patient: "MRN1"}, &rec); err != nil || rec.Revision == 0 {
		t.Fatalf("consent.get: %+v, %v", rec, err)
	}
	e.send(msgSpec{ctrl: "C1", filler: "F1", section: "SP"})
	e.send(msgSpec{ctrl: "C2", filler: "F2", section: "SP"})
	var list []*hold.Hold
	testutil.Eventually(t, 10*time.Second, "two holds listed", func() bool {
		list = nil
		return c.Call(ctx, "holds.list", HoldFilter{Provider: "DRSMITH", State: hold.StateHeld, Tag: "pathology"}, &list) == nil && len(list) == 2
	})
	var got hold.Hold
	if err := c.Call(ctx, "holds.get", HoldIDRequest{ID: list[0].ID}, &got); err != nil || got.ID != list[0].ID {
		t.Fatalf("holds.get: %+v, %v", got, err)
	}

	codeOf := func(err error) string {
		var ae *APIError
		if errors.As(err, &ae) {
			return ae.Code
		}
		return "not an API error: " + err.Error()
	}
	cases := []struct {
		name string
		op   string
		req  any
		code string
	}{
		{"unknown hold", "holds.get", HoldIDRequest{ID: "hnope"}, CodeNotFound},
		{"invalid hold id", "holds.get", HoldIDRequest{ID: "a.b"}, CodeNotFound},
		{"override without reason", "holds.override", OverrideAPIRequest{ID: list[0].ID, OverrideRequest: OverrideRequest{By: "DRONCALL", Role: hold.RoleOnCall}}, CodeReasonRequired},
		{"override not on call", "holds.override", OverrideAPIRequest{ID: list[0].ID, OverrideRequest: OverrideRequest{By: "X", Role: "clinician", Reason: "r"}}, CodeForbidden},
		{"release by stranger", "holds.release", ReleaseAPIRequest{ID: list[0].ID, AckRequest: AckRequest{By: "DRWHO"}}, CodeForbidden},
		{"unknown field", "holds.list", map[string]any{"bogus": 1}, CodeBadRequest},
		{"unknown operation", "holds.explode", map[string]any{}, CodeBadRequest},
		{"place without reason", "holds.place", PlaceRequest{Order: "F9", By: "DRSMITH"}, CodeReasonRequired},
		{"missing consent", "consent.get", ConsentGetRequest{Patient: "MRN404"}, CodeNotFound},
		{"missing dead record", "dead.replay", DeadReplayRequest{Seq: 42, By: "ops"}, CodeNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := c.Call(ctx, tc.op, tc.req, nil)
			if err == nil || codeOf(err) != tc.code {
				t.Fatalf("err = %v, want code %s", err, tc.code)
			}
		})
	}

	var rel hold.Hold
	if err := c.Call(ctx, "holds.release", ReleaseAPIRequest{ID: list[0].ID, AckRequest: AckRequest{By: "DRSMITH", Reason: "seen"}}, &rel); err != nil || rel.State != hold.StateReleased {
		t.Fatalf("holds.release: %+v, %v", rel, err)
	}
	if err := c.Call(ctx, "holds.release", ReleaseAPIRequest{ID: list[0].ID, AckRequest: AckRequest{By: "DRSMITH"}}, nil); codeOf(err) != CodeAlreadyReleased {
		t.Fatalf("second release: %v", err)
	}
	var ov hold.Hold
	if err := c.Call(ctx, "holds.override", OverrideAPIRequest{ID: list[1].ID, OverrideRequest: OverrideRequest{By: "DRONCALL", Role: hold.RoleOnCall, Reason: "emergency"}}, &ov); err != nil || ov.Release.Path != hold.PathOverride {
		t.Fatalf("holds.override: %+v, %v", ov, err)
	}
	var pr PlaceResult
	if err := c.Call(ctx, "holds.place", PlaceRequest{Order: "F9", Reason: "harm", By: "DRSMITH"}, &pr); err != nil {
		t.Fatalf("holds.place: %v", err)
	}
	var evs []AuditEvent
	if err := c.Call(ctx, "audit.query", AuditQuery{HoldID: list[1].ID}, &evs); err != nil || len(evs) != 2 || evs[1].Kind != bus.AuditOverride {
		t.Fatalf("audit.query: %+v, %v", evs, err)
	}
	since := e.clock.Now().Add(-time.Hour)
	evs = nil
	if err := c.Call(ctx, "audit.query", AuditQuery{Since: since}, &evs); err != nil || len(evs) < 5 {
		t.Fatalf("audit.query --since: %d events, %v", len(evs), err)
	}
	var dead []DeadRecord
	if err := c.Call(ctx, "dead.list", DeadListRequest{}, &dead); err != nil || len(dead) != 0 {
		t.Fatalf("dead.list: %+v, %v", dead, err)
	}
}
