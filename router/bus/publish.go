package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// PublishOpts are the JetStream publish expectations Publish sets as headers,
// as jetstream's WithMsgID, WithExpectStream and WithExpectLastSequence do.
type PublishOpts struct {
	// MsgID is the Nats-Msg-Id (the server's duplicate detection); empty
	// sets none.
	MsgID string
	// ExpectStream makes the server refuse the message unless the subject
	// is stored by this stream.
	ExpectStream string
	// ExpectLastSeq, with HasExpectLastSeq, makes the server refuse the
	// message unless the stream's last sequence is this one.
	ExpectLastSeq    uint64
	HasExpectLastSeq bool
}

// Retries on "no responders" (a stream's leader briefly missing), as
// jetstream's PublishMsg does by default.
const (
	publishRetryWait     = 250 * time.Millisecond
	publishRetryAttempts = 2
	publishTimeout       = 5 * time.Second
)

// Publish stores m in the JetStream stream that captures its subject and
// returns the acknowledgement, with jetstream.JetStream.PublishMsg's
// behaviour: the same headers, the same retries on no responders (then
// jetstream.ErrNoStreamResponse), the same errors (a server refusal is a
// *jetstream.APIError, a malformed answer jetstream.ErrInvalidJSAck). It
// differs in one thing: the server's success answer, which nats-server
// writes from a fixed template ({"stream":"NAME","seq":N} with an optional
// domain and duplicate flag), is read by hand instead of with encoding/json.
// The pipeline stores five messages for every result; decoding their
// acknowledgements with reflection was 2% of the process's CPU at full load
// (docs/BENCHMARKS.md, issue 14 §2). Anything else the server answers goes
// through encoding/json as before.
func Publish(ctx context.Context, nc *nats.Conn, m *nats.Msg, o PublishOpts) (*jetstream.PubAck, error) {
	if o.MsgID != "" || o.ExpectStream != "" || o.HasExpectLastSeq {
		if m.Header == nil {
			m.Header = nats.Header{}
		}
		if o.MsgID != "" {
			m.Header[jetstream.MsgIDHeader] = []string{o.MsgID}
		}
		if o.ExpectStream != "" {
			m.Header[jetstream.ExpectedStreamHeader] = []string{o.ExpectStream}
		}
		if o.HasExpectLastSeq {
			m.Header[jetstream.ExpectedLastSeqHeader] = []string{strconv.FormatUint(o.ExpectLastSeq, 10)}
		}
	}
	if _, ok := ctx.Deadline(); !ok {
		// jetstream bounds a publish without a deadline by its default
		// timeout (5 s, which resultgate never changes); so does this.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, publishTimeout)
		defer cancel()
	}
	resp, err := nc.RequestMsgWithContext(ctx, m)
	for r := 0; errors.Is(err, nats.ErrNoResponders) && r < publishRetryAttempts; r++ {
		select {
		case <-ctx.Done():
		case <-time.After(publishRetryWait):
		}
		resp, err = nc.RequestMsgWithContext(ctx, m)
	}
	if err != nil {
		if errors.Is(err, nats.ErrNoResponders) {
			return nil, jetstream.ErrNoStreamResponse
		}
		return nil, err
	}
	return ParsePubAck(resp.Data)
}

// pubAckResponse is a publish's answer as jetstream decodes it.
type pubAckResponse struct {
	Error *jetstream.APIError `json:"error,omitempty"`
	*jetstream.PubAck
}

// ParsePubAck reads a JetStream publish answer: the acknowledgement, or the
// server's refusal as a *jetstream.APIError (wrapped as jetstream wraps it).
func ParsePubAck(data []byte) (*jetstream.PubAck, error) {
	if ack, ok := parseTemplateAck(data); ok {
		return ack, nil
	}
	var r pubAckResponse
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, jetstream.ErrInvalidJSAck
	}
	if r.Error != nil {
		return nil, fmt.Errorf("nats: %w", r.Error)
	}
	if r.PubAck == nil || r.PubAck.Stream == "" {
		return nil, jetstream.ErrInvalidJSAck
	}
	return r.PubAck, nil
}

// parseTemplateAck reads the acknowledgement forms nats-server writes from
// its template: {"stream":"S","seq":N}, {"stream":"S","domain":"D","seq":N},
// each optionally ending ,"duplicate": true. ok is false for anything else
// (an error, a batch or counter answer, escapes in a name, another spacing),
// which the caller decodes with encoding/json.
func parseTemplateAck(b []byte) (*jetstream.PubAck, bool) {
	var ack jetstream.PubAck
	rest, ok := cutPrefix(b, `{"stream":"`)
	if !ok {
		return nil, false
	}
	if ack.Stream, rest, ok = quoted(rest); !ok || ack.Stream == "" {
		return nil, false
	}
	if r, ok := cutPrefix(rest, `,"domain":"`); ok {
		if ack.Domain, rest, ok = quoted(r); !ok {
			return nil, false
		}
	}
	if rest, ok = cutPrefix(rest, `,"seq":`); !ok {
		return nil, false
	}
	n := 0
	for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
		n++
	}
	if n == 0 || n > 20 || (n > 1 && rest[0] == '0') {
		return nil, false // JSON has no leading zeros
	}
	seq, err := strconv.ParseUint(string(rest[:n]), 10, 64)
	if err != nil {
		return nil, false
	}
	ack.Sequence = seq
	switch string(rest[n:]) {
	case "}":
	case `,"duplicate": true}`, `,"duplicate":true}`:
		ack.Duplicate = true
	default:
		return nil, false
	}
	return &ack, true
}

func cutPrefix(b []byte, p string) ([]byte, bool) {
	if len(b) < len(p) || string(b[:len(p)]) != p {
		return b, false
	}
	return b[len(p):], true
}

// quoted returns the string before the next double quote and what follows
// that quote; ok is false when there is none or the string has a backslash
// (an escape), a control character or a byte outside ASCII (which
// encoding/json may replace): those are left to encoding/json.
func quoted(b []byte) (string, []byte, bool) {
	for i, c := range b {
		switch {
		case c == '"':
			return string(b[:i]), b[i+1:], true
		case c == '\\' || c < 0x20 || c >= 0x80:
			return "", b, false
		}
	}
	return "", b, false
}
