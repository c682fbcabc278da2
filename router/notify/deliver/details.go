package deliver

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/resultgate/resultgate/hl7"
	"github.com/resultgate/resultgate/router/bus"
	"github.com/resultgate/resultgate/router/hold"
)

// StoreDetails returns the look-up of a notification's PHI for receivers
// with include_phi: the hold record (holds bucket) names the inbound
// message, which is read from HL7_IN and parsed for the patient's primary
// identifier (PID-3) and the tests' names (OBR-4 text, or code). A triage
// notice names its inbound message directly. Nothing it reads is logged.
func StoreDetails(js jetstream.JetStream) func(ctx context.Context, e Event) (*PHI, error) {
	return func(ctx context.Context, e Event) (*PHI, error) {
		phi := &PHI{ControlID: e.ControlID}
		stream, seq := bus.StreamHL7In, e.InboundSeq
		if e.Kind == KindDeadLetter {
			// The record holds the message itself (the intake's refusals
			// were never stored in HL7_IN).
			stream, seq = bus.StreamDead, e.DeadSeq
		}
		if e.HoldID != "" {
			kv, err := js.KeyValue(ctx, bus.KVHolds)
			if err != nil {
				return nil, fmt.Errorf("opening %s: %w", bus.KVHolds, err)
			}
			entry, err := kv.Get(ctx, e.HoldID)
			if err != nil {
				return nil, fmt.Errorf("reading hold %s: %w", e.HoldID, err)
			}
			var h hold.Hold
			if err := json.Unmarshal(entry.Value(), &h); err != nil {
				return nil, fmt.Errorf("decoding hold %s: %w", e.HoldID, err)
			}
			seq, phi.ControlID = h.Inbound.Seq, h.Inbound.ControlID
			if h.Inbound.Stream != "" {
				stream = h.Inbound.Stream
			}
		}
		if seq == 0 {
			return phi, nil
		}
		s, err := js.Stream(ctx, stream)
		if err != nil {
			return nil, fmt.Errorf("opening %s: %w", stream, err)
		}
		raw, err := s.GetMsg(ctx, seq)
		if err != nil {
			return nil, fmt.Errorf("reading %s seq %d: %w", stream, seq, err)
		}
		m, err := hl7.Parse(raw.Data)
		if err != nil {
			// A triage notice's message may not parse: what could be read
			// (the control ID) is still given.
			return phi, nil
		}
		if pid, ok := m.PID(); ok {
			if cx, ok := pid.PrimaryIdentifier(); ok {
				phi.PatientID = cx.ID
			}
		}
		var tests []string
		for _, s := range m.All("OBR") {
			u := hl7.ReadOBR(s).UniversalServiceID
			name := u.Text
			if name == "" {
				name = u.Code
			}
			if name != "" && !contains(tests, name) {
				tests = append(tests, name)
			}
		}
		phi.TestName = strings.Join(tests, ", ")
		return phi, nil
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
