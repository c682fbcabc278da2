package holdview

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	jsonv2 "github.com/go-json-experiment/json"

	"github.com/resultgate/resultgate/policy"
	"github.com/resultgate/resultgate/router/hold"
)

// decodeTestHolds are hold records in every shape the view decodes: open and
// released, with and without the optional fields, with long evidence lists
// and several transitions, and text that needs escaping.
func decodeTestHolds() []*hold.Hold {
	now := time.Date(2026, 11, 23, 12, 0, 0, 123456789, time.FixedZone("EST", -5*3600))
	var out []*hold.Hold
	for i := range 6 {
		h := viewTestHold(i, now)
		switch i {
		case 1:
			h.State = hold.StateReleased
			h.Release = &hold.ReleaseInfo{Path: hold.PathAcknowledged, Actor: "Dr \"Quote\" <Synth>", Role: hold.RoleClinician, Reason: "discussed\nby phone", Note: "Résumé ünïcode ✓", Notify: policy.NotifyQuiet, At: now.Add(time.Hour)}
			h.Published = true
			h.Transitions = append(h.Transitions, hold.Transition{From: hold.StateHeld, To: hold.StateReleased, Path: hold.PathAcknowledged, Actor: "DR0001", Role: hold.RoleClinician, Reason: "ok", At: now.Add(time.Hour)})
		case 2:
			h.Reminded, h.Escalated = true, true
			h.Supersedes, h.SupersededBy = "aaaa", "bbbb"
			h.PublishError = "fhir mapping refused: OBX-2"
		case 3:
			for j := range 30 {
				h.Tags[0].Evidence = append(h.Tags[0].Evidence, policy.Evidence{Segment: "OBX", Occurrence: j + 1, Field: "OBX-5", Rule: fmt.Sprintf("lex.%d", j), Match: "carcinoma \\ \"x\" \u2028"})
			}
			h.Bases = append(h.Bases, hold.Basis{Kind: string(policy.BasisStateLaw), Detail: json.RawMessage(`{"kind":"state-law","nested":{"a":[1,2,{"b":null}]}}`)})
		case 4:
			h.Tags, h.Bases, h.Transitions = nil, nil, nil
			h.RemindAt, h.EscalateAt = time.Time{}, time.Time{}
			h.ProviderKey, h.ProviderID, h.OrderKey, h.Notify, h.Note = "", "", "", "", ""
		case 5:
			h.State = hold.StateWithdrawn
			h.Inbound.ControlID = ""
		}
		out = append(out, h)
	}
	return out
}

// TestSlimDecodeMatchesV1 checks that the view's decoder (JSON v2) reads a
// stored hold record exactly as encoding/json does.
func TestSlimDecodeMatchesV1(t *testing.T) {
	for i, h := range decodeTestHolds() {
		data, err := json.Marshal(h)
		if err != nil {
			t.Fatal(err)
		}
		var v1, v2 slimHold
		if err := json.Unmarshal(data, &v1); err != nil {
			t.Fatalf("hold %d: v1: %v", i, err)
		}
		if err := decodeSlim(data, &v2); err != nil {
			t.Fatalf("hold %d: v2: %v", i, err)
		}
		if !reflect.DeepEqual(v1, v2) {
			t.Errorf("hold %d decodes differently:\nv1 %+v\nv2 %+v", i, v1, v2)
		}
		// The view keeps what it needs: spot-check against the record.
		if v2.ID != h.ID || v2.State != h.State || !v2.Deadline.Equal(h.Deadline) || v2.Inbound != h.Inbound || len(v2.Tags) != len(h.Tags) || v2.Reminded != h.Reminded {
			t.Errorf("hold %d: decoded %+v from %+v", i, v2.Hold, *h)
		}
		if (h.Release == nil) != (v2.Release == nil) || h.Release != nil && (!h.Release.At.Equal(v2.Release.At) || h.Release.Actor != v2.Release.Actor || h.Release.Note != v2.Release.Note || h.Release.Path != v2.Release.Path) {
			t.Errorf("hold %d: release %+v, want %+v", i, v2.Release, h.Release)
		}
	}
	// What v2 alone refuses is read as v1 reads it.
	for _, odd := range []string{
		"{\"id\":\"h1\",\"state\":\"held\",\"note\":\"caf\xe9\"}", // invalid UTF-8
		`{"id":"h1","state":"held","id":"h2"}`,                    // repeated member
	} {
		var v1, v2 slimHold
		if err := json.Unmarshal([]byte(odd), &v1); err != nil {
			t.Fatalf("%q: v1: %v", odd, err)
		}
		if err := jsonv2.Unmarshal([]byte(odd), &v2); err == nil {
			t.Fatalf("%q: JSON v2 reads it; the case does not test the fallback", odd)
		}
		v2 = slimHold{}
		if err := decodeSlim([]byte(odd), &v2); err != nil || !reflect.DeepEqual(v1, v2) {
			t.Errorf("%q: decodeSlim %+v, %v; v1 %+v", odd, v2.Hold, err, v1.Hold)
		}
	}
	// Both refuse what is not a record.
	for _, bad := range []string{`{"id":`, `[]`, `{"deadline":"yesterday"}`, `{"inbound":{"seq":-1}}`} {
		var v1, v2 slimHold
		e1, e2 := json.Unmarshal([]byte(bad), &v1), decodeSlim([]byte(bad), &v2)
		if e1 == nil || e2 == nil {
			t.Errorf("%s: v1 error %v, v2 error %v; want both to fail", bad, e1, e2)
		}
	}
}

// BenchmarkSlimDecode decodes one 3.4 KB hold record (the size the pipeline
// writes for a pathology hold with 25 evidence items) for the view, with the
// view's decoder and with encoding/json for comparison.
func BenchmarkSlimDecode(b *testing.B) {
	h := viewTestHold(7, time.Now().UTC())
	for i := range 24 {
		h.Tags[0].Evidence = append(h.Tags[0].Evidence, policy.Evidence{Segment: "OBX", Occurrence: i + 1, Field: "OBX-5", Rule: fmt.Sprintf("lex.malignancy.%d", i), Match: "invasive ductal carcinoma, grade 2"})
	}
	h.Transitions = append(h.Transitions, h.Transitions[0], h.Transitions[0])
	data, err := json.Marshal(h)
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		decode func([]byte, *slimHold) error
	}{
		{"view", decodeSlim},
		{"encoding-json", func(d []byte, sh *slimHold) error { return json.Unmarshal(d, sh) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				var sh slimHold
				if err := c.decode(data, &sh); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
