package feed

import (
	"maps"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/resultgate/resultgate/policy"
	"github.com/resultgate/resultgate/router/bus"
	"github.com/resultgate/resultgate/router/hold"
)

// headerBySet is how the release headers were written before releaseHeader
// (one Set per header): the reference the new construction must equal.
func headerBySet(r *Emit, pid string) nats.Header {
	hdr := nats.Header{}
	hdr.Set(bus.HeaderHoldID, r.HoldID)
	hdr.Set(bus.HeaderReleasePath, string(r.Rel.Path))
	if r.Rel.Reason != "" {
		hdr.Set(bus.HeaderReleaseReason, url.PathEscape(r.Rel.Reason))
	}
	hdr.Set(bus.HeaderReleaseActor, r.Rel.Actor)
	hdr.Set(bus.HeaderReleaseRole, r.Rel.Role)
	hdr.Set(bus.HeaderReleasedAt, r.Rel.At.UTC().Format(time.RFC3339Nano))
	if r.Rel.Notify != "" {
		hdr.Set(bus.HeaderNotify, string(r.Rel.Notify))
	}
	if r.Rel.Note != "" {
		hdr.Set(bus.HeaderNote, url.PathEscape(r.Rel.Note))
	}
	if r.PatientKey != "" {
		hdr.Set(bus.HeaderPatientKey, r.PatientKey)
	}
	if r.Inbound.ControlID != "" {
		hdr.Set(bus.HeaderControlID, r.Inbound.ControlID)
	}
	hdr.Set(bus.HeaderInboundSeq, strconv.FormatUint(r.Inbound.Seq, 10))
	if r.Retracts != "" {
		hdr.Set(bus.HeaderRetracts, r.Retracts)
	}
	hdr.Set(bus.HeaderProcessingID, pid)
	return hdr
}

// TestReleaseHeader: the release headers are the ones written before, for a
// full release, a retraction and a release with every optional value empty;
// and each publish gets its own map.
func TestReleaseHeader(t *testing.T) {
	at := time.Date(2026, 12, 8, 3, 4, 5, 6000, time.FixedZone("x", 3600))
	cases := map[string]struct {
		e   Emit
		pid string
	}{
		"release": {Emit{HoldID: "h1", PatientKey: "pk", Inbound: hold.InboundRef{Seq: 42, ControlID: "C1"},
			Rel: hold.ReleaseInfo{Path: hold.PathAcknowledged, Actor: "dr-a", Role: hold.RoleClinician,
				Reason: "reviewed, discussed by phone", Note: "Your doctor will call: 100% normal", Notify: policy.NotifyQuiet, At: at}}, "P"},
		"retraction": {Emit{HoldID: "h2", PatientKey: "pk", Retracts: "h1", Inbound: hold.InboundRef{Seq: 7},
			Rel: hold.ReleaseInfo{Path: hold.PathRetraction, Actor: "resultgate", Role: hold.RoleSystem, Reason: "withdrawn", At: at}}, "T"},
		"empty optionals": {Emit{Rel: hold.ReleaseInfo{At: at}}, ""},
	}
	for name, c := range cases {
		h := releaseHeader(&c.e, c.pid)
		got, again := h.build(), h.build()
		if want := headerBySet(&c.e, c.pid); !maps.EqualFunc(got, want, func(a, b []string) bool { return len(a) == 1 && len(b) == 1 && a[0] == b[0] }) {
			t.Errorf("%s: headers\n got %v\nwant %v", name, got, want)
		}
		got.Set(bus.HeaderMsgID, "one")
		if again.Get(bus.HeaderMsgID) != "" {
			t.Errorf("%s: the two publishes share one header map", name)
		}
	}
}
