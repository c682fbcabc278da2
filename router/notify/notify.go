package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/resultgate/resultgate/router/bus"
	"github.com/resultgate/resultgate/router/hold"
)

// Notification is the body of a clinician or on-call notification. It carries
// the opaque hold ID, tag names and times only: whoever receives it looks the
// hold up through the API.
type Notification struct {
	Kind       string    `json:"kind"`
	HoldID     string    `json:"hold_id"`
	ProviderID string    `json:"provider_id,omitempty"`
	Tags       []string  `json:"tags,omitempty"`
	Bases      []string  `json:"bases,omitempty"`
	Deadline   time.Time `json:"deadline"`
	At         time.Time `json:"at"`
}

// Notifier publishes notifications to the NOTIFY stream.
type Notifier struct {
	js jetstream.JetStream
}

// New returns the notifier over js.
func New(js jetstream.JetStream) *Notifier { return &Notifier{js: js} }

// Send publishes a notification of kind about h with Nats-Msg-Id
// ntf-<hold>-<kind>, so a re-run or a second scheduler sends it once.
func (n *Notifier) Send(ctx context.Context, kind string, h *hold.Hold, now time.Time) error {
	subj := bus.SubjectNotifyClinicianPrefix + h.ProviderKey
	if h.ProviderKey == "" {
		subj = bus.SubjectNotifyClinicianPrefix + "unknown"
	}
	if kind == bus.NotifyEscalation {
		subj = bus.SubjectNotifyOnCall
	}
	body := Notification{Kind: kind, HoldID: h.ID, ProviderID: h.ProviderID, Tags: h.TagNames(), Deadline: h.Deadline, At: now.UTC()}
	for _, b := range h.Bases {
		body.Bases = append(body.Bases, b.Kind)
	}
	data, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("encoding notification: %w", err)
	}
	_, err = n.js.PublishMsg(ctx, &nats.Msg{Subject: subj, Data: data},
		jetstream.WithMsgID("ntf-"+h.ID+"-"+kind), jetstream.WithExpectStream(bus.StreamNotify))
	if err != nil {
		return fmt.Errorf("publishing %s notification: %w", kind, err)
	}
	return nil
}

// TriageNotice is the body of an on-call dead-letter notification: the
// classify step gave up on a result. Kind is "triage" when the result cannot
// be attributed to a patient (reason unattributed), "dead-letter" for every
// other reason. It names the DEAD record, the inbound message and its
// partition by sequence and token only, with the PHI-free reason, detail and
// the number of deliveries tried (no message content): on-call finds it with
// `resultgate dead list --open --reason <reason>` or on the worklist page.
type TriageNotice struct {
	Kind       string    `json:"kind"`
	Reason     string    `json:"reason"`
	Detail     string    `json:"detail"`
	DeadSeq    uint64    `json:"dead_seq"`
	InboundSeq uint64    `json:"inbound_seq"`
	Partition  string    `json:"partition,omitempty"`
	Deliveries int       `json:"deliveries,omitempty"`
	ControlID  string    `json:"control_id,omitempty"`
	At         time.Time `json:"at"`
}

// Triage publishes t on notify.oncall with Nats-Msg-Id
// ntf-dead-<inbound seq>-<kind>, so a redelivery of the inbound message
// notifies once. The kind is chosen from t.Reason (see TriageNotice).
func (n *Notifier) Triage(ctx context.Context, t TriageNotice) error {
	t.Kind = bus.NotifyDeadLetter
	if t.Reason == bus.DeadUnattributed {
		t.Kind = bus.NotifyTriage
	}
	t.At = t.At.UTC()
	data, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("encoding %s notification: %w", t.Kind, err)
	}
	_, err = n.js.PublishMsg(ctx, &nats.Msg{Subject: bus.SubjectNotifyOnCall, Data: data},
		jetstream.WithMsgID("ntf-dead-"+strconv.FormatUint(t.InboundSeq, 10)+"-"+t.Kind), jetstream.WithExpectStream(bus.StreamNotify))
	if err != nil {
		return fmt.Errorf("publishing %s notification: %w", t.Kind, err)
	}
	return nil
}
