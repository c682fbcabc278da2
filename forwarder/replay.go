package forwarder

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/resultgate/resultgate/router/dead"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/resultgate/resultgate/router/bus"
)

// ErrNotForwardRecord means a DEAD record was not written by the forwarder
// (its reason is not DeadReason or its subject is not on the HL7 portal feed).
var ErrNotForwardRecord = errors.New("not a forwarder dead-letter record")

// Replay re-publishes the forwarder's dead-letter record deadSeq (a sequence in
// the DEAD stream) to the portal HL7 feed subject it came from, with the
// original data and feed headers, so that the forwarder delivers it again. It
// joins the end of its partition. The Nats-Msg-Id is
// "<original Msg-Id>#replay-<deadSeq>": new, because the original may still be
// in the PORTAL duplicate window, and stable, so replaying the same record
// twice queues it once. It returns the subject published to.
func Replay(ctx context.Context, js jetstream.JetStream, deadSeq uint64) (string, error) {
	s, err := js.Stream(ctx, bus.StreamDead)
	if err != nil {
		return "", fmt.Errorf("opening %s: %w", bus.StreamDead, err)
	}
	raw, err := s.GetMsg(ctx, deadSeq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return "", fmt.Errorf("dead seq %d: %w", deadSeq, dead.ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("reading dead seq %d: %w", deadSeq, err)
	}
	subj := raw.Header.Get(bus.HeaderDeadSubject)
	if raw.Header.Get(bus.HeaderDeadReason) != DeadReason || !strings.HasPrefix(subj, bus.SubjectPortalHL7Prefix) {
		return "", fmt.Errorf("dead seq %d: %w", deadSeq, ErrNotForwardRecord)
	}
	hdr := nats.Header{}
	for k, v := range raw.Header {
		if strings.HasPrefix(k, "Resultgate-Dead-") || strings.HasPrefix(k, "Resultgate-Forward-") || strings.HasPrefix(k, "Nats-") {
			continue
		}
		hdr[k] = v
	}
	id := raw.Header.Get(bus.HeaderDeadMsgID)
	if id == "" {
		id = "portal-seq-" + raw.Header.Get(bus.HeaderDeadSeq)
	}
	id += "#replay-" + strconv.FormatUint(deadSeq, 10)
	if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: subj, Header: hdr, Data: raw.Data},
		jetstream.WithMsgID(id), jetstream.WithExpectStream(bus.StreamPortal)); err != nil {
		return "", fmt.Errorf("replaying dead seq %d to %s: %w", deadSeq, subj, err)
	}
	return subj, nil
}
