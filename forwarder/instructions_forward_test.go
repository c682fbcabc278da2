package forwarder

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/resultgate/resultgate/hl7"
	"github.com/resultgate/resultgate/internal/testutil"
	"github.com/resultgate/resultgate/router/bus"
)

// publishReleased puts one released result on portal.hl7.<partition> with
// every release header the gate writes (router/pipeline/gate.go), the note
// and the reason percent-encoded as there. The message is oru(ctl) unless
// data is given.
func publishReleased(t *testing.T, js jetstream.JetStream, partition, ctl, note string, edit func(nats.Header), data ...byte) {
	t.Helper()
	hdr := nats.Header{}
	hdr.Set(bus.HeaderControlID, ctl)
	hdr.Set(bus.HeaderHoldID, "hold-"+ctl)
	hdr.Set(bus.HeaderReleasePath, "acknowledged")
	hdr.Set(bus.HeaderReleaseReason, url.PathEscape("reviewed with the patient"))
	hdr.Set(bus.HeaderReleaseActor, "dr.smith")
	hdr.Set(bus.HeaderReleaseRole, "clinician")
	hdr.Set(bus.HeaderReleasedAt, time.Date(2026, 12, 7, 22, 5, 9, 123456789, time.UTC).Format(time.RFC3339Nano))
	hdr.Set(bus.HeaderNotify, "quiet")
	hdr.Set(bus.HeaderNote, url.PathEscape(note))
	hdr.Set(bus.HeaderProcessingID, "P")
	if edit != nil {
		edit(hdr)
	}
	if data == nil {
		data = oru(ctl)
	}
	_, err := js.PublishMsg(testCtx(t), &nats.Msg{Subject: bus.SubjectPortalHL7Prefix + partition, Header: hdr, Data: data},
		jetstream.WithMsgID("rel-hold-"+ctl+"-hl7"), jetstream.WithExpectStream(bus.StreamPortal))
	if err != nil {
		t.Fatalf("publishing %s: %v", ctl, err)
	}
}

func TestForwardedHL7CarriesReleaseInstructions(t *testing.T) {
	t.Parallel()
	js := startJS(t)
	d := startDownstream(t, "127.0.0.1:0", nil)
	f := startForwarder(t, js, testConfig(d.addr, "p01"))
	note := "Su médico revisó este resultado.\nLlame al 555-0100 | opción 2."
	publishReleased(t, js, "p01", "p01-001", note, nil)
	// A retraction: path retraction, the hold it takes back.
	publishReleased(t, js, "p01", "p01-002", "This result is being revised.", func(h nats.Header) {
		h.Set(bus.HeaderReleasePath, "retraction")
		h.Set(bus.HeaderReleaseActor, "resultgate")
		h.Set(bus.HeaderReleaseRole, "system")
		h.Set(bus.HeaderRetracts, "hold-p01-001")
	})
	waitDelivered(t, f, 2)

	got := d.frame("p01-001")
	orig := oru("p01-001")
	// Every original byte, MSH included, comes first and in place: the OBR
	// group's NTE goes after OBR, the ZRG last.
	obr := strings.Index(string(orig), "OBR|")
	obrEnd := obr + strings.IndexByte(string(orig[obr:]), '\r') + 1
	wantNTE := "NTE|1|O|Su médico revisó este resultado.\\.br\\Llame al 555-0100 \\F\\ opción 2.|PI^Patient Instructions^HL70364\r"
	want := string(orig[:obrEnd]) + wantNTE + string(orig[obrEnd:]) +
		"ZRG|quiet|acknowledged|dr.smith|clinician|20261207220509+0000|hold-p01-001||reviewed with the patient\r"
	if string(got) != want {
		t.Errorf("downstream received\n%q\nwant\n%q", got, want)
	}
	m, err := hl7.Parse(got)
	if err != nil {
		t.Fatal(err)
	}
	if nte := m.First("NTE"); nte == nil || strings.Join(nte.Field(3).Values(), "\n") != note {
		t.Errorf("NTE-3 does not read back as the note")
	}

	ret, err := hl7.Parse(d.frame("p01-002"))
	if err != nil {
		t.Fatal(err)
	}
	z := ret.First("ZRG")
	if z == nil || z.Field(2).Value() != "retraction" || z.Field(7).Value() != "hold-p01-001" || z.Field(6).Value() != "hold-p01-002" {
		t.Errorf("retraction's ZRG = %v", z)
	}
}

func TestReleaseInstructionsOffSendsBytesUnchanged(t *testing.T) {
	t.Parallel()
	js := startJS(t)
	d := startDownstream(t, "127.0.0.1:0", nil)
	cfg := testConfig(d.addr, "p01")
	off := false
	cfg.ReleaseInstructions = &off
	f := startForwarder(t, js, cfg)
	publishReleased(t, js, "p01", "p01-001", "a note", nil)
	waitDelivered(t, f, 1)
	if got := d.frame("p01-001"); string(got) != string(oru("p01-001")) {
		t.Errorf("with release_instructions false the downstream received %q", got)
	}
}

func TestUnreadableInstructionsAreDeadLettered(t *testing.T) {
	t.Parallel()
	js := startJS(t)
	d := startDownstream(t, "127.0.0.1:0", nil)
	f := startForwarder(t, js, testConfig(d.addr, "p03"))
	publishReleased(t, js, "p03", "p03-001", "", func(h nats.Header) { h.Set(bus.HeaderNote, "100%zz") })
	publishReleased(t, js, "p03", "p03-002", "fine", nil)
	waitDelivered(t, f, 1)
	testutil.Eventually(t, waitFor, "dead letter counted", func() bool { return f.Stats().Dead == 1 })
	if got := d.received(); len(got) != 1 || got[0] != "p03-002" {
		t.Errorf("downstream received %v, want only p03-002", got)
	}
	ctx := testCtx(t)
	st, err := js.Stream(ctx, bus.StreamDead)
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.GetLastMsgForSubject(ctx, bus.DeadSubject(DeadReason))
	if err != nil {
		t.Fatal(err)
	}
	detail := m.Header.Get(bus.HeaderDeadDetail)
	if !strings.Contains(detail, "release instructions cannot be added") || !strings.Contains(detail, bus.HeaderNote) || strings.Contains(detail, "zz") {
		t.Errorf("dead detail = %q", detail)
	}
	if string(m.Data) != string(oru("p03-001")) {
		t.Errorf("dead record data differs from the feed message")
	}
}
