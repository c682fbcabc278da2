package hold

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/resultgate/resultgate/policy"
)

// fullHold is a hold with every field set, its times UTC as the classify
// step makes them.
func fullHold() *Hold {
	at := time.Date(2026, 12, 8, 0, 30, 0, 123456789, time.UTC)
	return &Hold{
		ID: "habc", State: StateReleased,
		Inbound:    InboundRef{Stream: "HL7_IN", Seq: 42, MsgID: "LAB|FAC|C1", Partition: "p07", ControlID: "C1"},
		PatientKey: "pk", ProviderKey: "prk", ProviderID: "DR1", OrderKey: "ok",
		Tags: []policy.Tag{{Tag: "malignancy", Evidence: []policy.Evidence{{Segment: "OBX", Occurrence: 2, Field: "OBX-5",
			Rule: "r1", Match: "carcinoma", Layer: "free-text", Start: 3, End: 12, Modifier: "hedge: suspicious for"}}},
			{Tag: "pathology", Evidence: []policy.Evidence{}}},
		RulesetVersion: "2026.12.0",
		Bases:          []Basis{{Kind: "state-law", Detail: json.RawMessage(`{"statute":"US-KY-KRS-333.152","hours":72}`)}, {Kind: "sender-flag"}},
		Deadline:       at.Add(72 * time.Hour), RemindAt: at.Add(48 * time.Hour), EscalateAt: at.Add(68 * time.Hour),
		Reminded: true, Escalated: true, Notify: policy.NotifyQuiet, Note: "note",
		CreatedAt: at, Release: &ReleaseInfo{Path: PathAcknowledged, Actor: "dr", Role: RoleClinician, Reason: "seen", Note: "n", Notify: policy.NotifyQuiet, At: at.Add(time.Hour)},
		Published: true, PublishError: "fhir: refused", Supersedes: "hold0", SupersededBy: "hold2",
		Transitions: []Transition{{From: "", To: StateHeld, Actor: "resultgate", Role: RoleSystem, Reason: "policy", At: at},
			{From: StateHeld, To: StateReleased, Path: PathAcknowledged, Actor: "dr", Role: RoleClinician, Reason: "seen", At: at.Add(time.Hour)}},
		Revision: 9,
	}
}

// TestHoldCopyEqualsClone: for a hold with every field set (a field added
// later without a copy fails the first check), Copy gives what the JSON
// round trip of Clone gives, and shares no slice with the original.
func TestHoldCopyEqualsClone(t *testing.T) {
	h := fullHold()
	v := reflect.ValueOf(*h)
	for i := range v.NumField() {
		if v.Field(i).IsZero() {
			t.Fatalf("test hold leaves field %s zero: set it (and copy it in Copy)", v.Type().Field(i).Name)
		}
	}
	c := h.Copy()
	if want := h.Clone(); !reflect.DeepEqual(c, want) {
		t.Fatalf("Copy differs from Clone:\n got %+v\nwant %+v", c, want)
	}
	c.Tags[0].Evidence[0].Match = "x"
	c.Tags[0].Tag = "y"
	c.Bases[0].Detail[2] = 'X'
	c.Transitions[0].Reason = "z"
	c.Release.Reason = "w"
	if !reflect.DeepEqual(h, fullHold()) {
		t.Fatal("changing the copy changed the original")
	}
	var empty Hold
	if got := empty.Copy(); !reflect.DeepEqual(got, empty.Clone()) {
		t.Fatalf("empty hold: Copy %+v, Clone %+v", got, empty.Clone())
	}
}
