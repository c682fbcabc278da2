package pipeline_test

import (
	"errors"
	"testing"
	"time"

	"github.com/resultgate/resultgate/router/dead"

	"github.com/resultgate/resultgate/router/api"
	"github.com/resultgate/resultgate/router/pipeline"

	"github.com/resultgate/resultgate/router/holdview"

	"github.com/resultgate/resultgate/router/audit"

	"github.com/resultgate/resultgate/router/store"

	"github.com/resultgate/resultgate/internal/testutil"
	"github.com/resultgate/resultgate/router/bus"
	"github.com/resultgate/resultgate/router/hold"
)

// TestAPIOverNATS drives the request/reply API as the CLI does.
func TestAPIOverNATS(t *testing.T) {
	e := pipeline.StartAPITestEnv(t)
	srv, err := api.Start(e.NC(), "", e.Service())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Stop(testutil.Ctx(t)); err != nil {
			t.Errorf("api Stop: %v", err)
		}
	})
	c := api.Client{NC: e.NC(), Timeout: 5 * time.Second}
	ctx := testutil.Ctx(t)

	consent := pipeline.ConsentForTest("MRN1", true)
	var cres pipeline.ConsentResult
	if err := c.Call(ctx, "consent.put", pipeline.ConsentPut{Consent: consent, By: "patient"}, &cres); err != nil {
		t.Fatalf("consent.put: %v", err)
	}
	var rec store.ConsentRecord
	if err := c.Call(ctx, "consent.get", api.ConsentGetRequest{Patient: "MRN1"}, &rec); err != nil || rec.Revision == 0 {
		t.Fatalf("consent.get: %+v, %v", rec, err)
	}
	e.SendPathology("C1", "F1")
	e.SendPathology("C2", "F2")
	var list []*hold.Hold
	testutil.Eventually(t, 10*time.Second, "two holds listed", func() bool {
		list = nil
		return c.Call(ctx, "holds.list", holdview.Filter{Provider: "DRSMITH", State: hold.StateHeld, Tag: "pathology"}, &list) == nil && len(list) == 2
	})
	var got hold.Hold
	if err := c.Call(ctx, "holds.get", api.HoldIDRequest{ID: list[0].ID}, &got); err != nil || got.ID != list[0].ID {
		t.Fatalf("holds.get: %+v, %v", got, err)
	}

	codeOf := func(err error) string {
		var ae *api.Error
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
		{"unknown hold", "holds.get", api.HoldIDRequest{ID: "hnope"}, api.CodeNotFound},
		{"invalid hold id", "holds.get", api.HoldIDRequest{ID: "a.b"}, api.CodeNotFound},
		{"override without reason", "holds.override", api.OverrideAPIRequest{ID: list[0].ID, OverrideRequest: pipeline.OverrideRequest{By: "DRONCALL", Role: hold.RoleOnCall}}, api.CodeReasonRequired},
		{"override not on call", "holds.override", api.OverrideAPIRequest{ID: list[0].ID, OverrideRequest: pipeline.OverrideRequest{By: "X", Role: "clinician", Reason: "r"}}, api.CodeForbidden},
		{"release by stranger", "holds.release", api.ReleaseAPIRequest{ID: list[0].ID, AckRequest: pipeline.AckRequest{By: "DRWHO"}}, api.CodeForbidden},
		{"unknown field", "holds.list", map[string]any{"bogus": 1}, api.CodeBadRequest},
		{"unknown operation", "holds.explode", map[string]any{}, api.CodeBadRequest},
		{"place without reason", "holds.place", pipeline.PlaceRequest{Order: "F9", Issuer: "HOSP", By: "DRSMITH"}, api.CodeReasonRequired},
		{"missing consent", "consent.get", api.ConsentGetRequest{Patient: "MRN404"}, api.CodeNotFound},
		{"missing dead record", "dead.replay", api.DeadReplayRequest{Seq: 42, By: "ops"}, api.CodeNotFound},
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
	if err := c.Call(ctx, "holds.release", api.ReleaseAPIRequest{ID: list[0].ID, AckRequest: pipeline.AckRequest{By: "DRSMITH", Reason: "seen"}}, &rel); err != nil || rel.State != hold.StateReleased {
		t.Fatalf("holds.release: %+v, %v", rel, err)
	}
	if err := c.Call(ctx, "holds.release", api.ReleaseAPIRequest{ID: list[0].ID, AckRequest: pipeline.AckRequest{By: "DRSMITH"}}, nil); codeOf(err) != api.CodeAlreadyReleased {
		t.Fatalf("second release: %v", err)
	}
	var ov hold.Hold
	if err := c.Call(ctx, "holds.override", api.OverrideAPIRequest{ID: list[1].ID, OverrideRequest: pipeline.OverrideRequest{By: "DRONCALL", Role: hold.RoleOnCall, Reason: "emergency"}}, &ov); err != nil || ov.Release.Path != hold.PathOverride {
		t.Fatalf("holds.override: %+v, %v", ov, err)
	}
	var pr pipeline.PlaceResult
	if err := c.Call(ctx, "holds.place", pipeline.PlaceRequest{Order: "F9", Issuer: "HOSP", Reason: "harm", By: "DRSMITH"}, &pr); err != nil {
		t.Fatalf("holds.place: %v", err)
	}
	var evs []audit.Event
	if err := c.Call(ctx, "audit.query", audit.Query{HoldID: list[1].ID}, &evs); err != nil || len(evs) != 2 || evs[1].Kind != bus.AuditOverride {
		t.Fatalf("audit.query: %+v, %v", evs, err)
	}
	since := e.Now().Add(-time.Hour)
	evs = nil
	if err := c.Call(ctx, "audit.query", audit.Query{Since: since}, &evs); err != nil || len(evs) < 5 {
		t.Fatalf("audit.query --since: %d events, %v", len(evs), err)
	}
	var dead []dead.Record
	if err := c.Call(ctx, "dead.list", api.DeadListRequest{}, &dead); err != nil || len(dead) != 0 {
		t.Fatalf("dead.list: %+v, %v", dead, err)
	}
}
