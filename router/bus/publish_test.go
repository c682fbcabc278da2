package bus_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/resultgate/resultgate/config"
	"github.com/resultgate/resultgate/internal/testutil"
	"github.com/resultgate/resultgate/router/bus"
)

// TestPublishMatchesJetStream runs each publish case through jetstream's
// PublishMsg and through bus.Publish against a real server and checks both
// answer the same: the same acknowledgement (stream, sequence, duplicate) or
// the same server refusal.
func TestPublishMatchesJetStream(t *testing.T) {
	tj := testutil.StartJS(t, config.DurabilityOS)
	ctx := testutil.Ctx(t)
	for _, name := range []string{"PUBA", "PUBB"} {
		if _, err := tj.JS.CreateStream(ctx, jetstream.StreamConfig{
			Name: name, Subjects: []string{"pubtest." + name + ".>"}, Storage: jetstream.MemoryStorage, Duplicates: time.Minute,
		}); err != nil {
			t.Fatalf("CreateStream %s: %v", name, err)
		}
	}
	// The same steps on two identical streams, one through each client, so
	// sequences and duplicate state line up.
	type step struct {
		name     string
		msgID    string
		expect   string // expected stream; "-" for the other stream's name
		lastSeq  uint64
		hasLast  bool
		wantErr  bool
		wantCode jetstream.ErrorCode
		wantDup  bool
		wantSeq  uint64
	}
	steps := []step{
		{name: "first", msgID: "a", wantSeq: 1},
		{name: "no id", wantSeq: 2},
		{name: "duplicate", msgID: "a", wantSeq: 1, wantDup: true},
		{name: "expected stream", msgID: "b", expect: "self", wantSeq: 3},
		{name: "wrong stream", msgID: "c", expect: "-", wantErr: true, wantCode: 10060},
		{name: "expected last sequence", msgID: "d", lastSeq: 3, hasLast: true, wantSeq: 4},
		{name: "wrong last sequence", msgID: "e", lastSeq: 1, hasLast: true, wantErr: true, wantCode: jetstream.JSErrCodeStreamWrongLastSequence},
		{name: "after a refusal", msgID: "e", wantSeq: 5},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			var acks [2]*jetstream.PubAck
			var errs [2]error
			for i, stream := range []string{"PUBA", "PUBB"} {
				exp := s.expect
				switch exp {
				case "self":
					exp = stream
				case "-":
					exp = map[string]string{"PUBA": "PUBB", "PUBB": "PUBA"}[stream]
				}
				m := &nats.Msg{Subject: "pubtest." + stream + ".x", Data: []byte("payload " + s.name)}
				if i == 0 {
					var opts []jetstream.PublishOpt
					if s.msgID != "" {
						opts = append(opts, jetstream.WithMsgID(s.msgID))
					}
					if exp != "" {
						opts = append(opts, jetstream.WithExpectStream(exp))
					}
					if s.hasLast {
						opts = append(opts, jetstream.WithExpectLastSequence(s.lastSeq))
					}
					acks[i], errs[i] = tj.JS.PublishMsg(ctx, m, opts...)
				} else {
					acks[i], errs[i] = bus.Publish(ctx, tj.NC, m, bus.PublishOpts{MsgID: s.msgID, ExpectStream: exp, ExpectLastSeq: s.lastSeq, HasExpectLastSeq: s.hasLast})
				}
			}
			if s.wantErr {
				for i, err := range errs {
					var apiErr *jetstream.APIError
					if !errors.As(err, &apiErr) || apiErr.ErrorCode != s.wantCode {
						t.Fatalf("client %d: error %v, want API error %d", i, err, s.wantCode)
					}
				}
				if errs[0].Error() != errs[1].Error() {
					t.Errorf("errors differ: jetstream %q, bus %q", errs[0], errs[1])
				}
				if s.wantCode == jetstream.JSErrCodeStreamWrongLastSequence && !errors.Is(errs[1], jetstream.ErrKeyExists) {
					t.Errorf("bus error %v does not match jetstream's wrong-last-sequence sentinel", errs[1])
				}
				return
			}
			for i, err := range errs {
				if err != nil {
					t.Fatalf("client %d: %v", i, err)
				}
			}
			a, b := acks[0], acks[1]
			if a.Sequence != s.wantSeq || b.Sequence != s.wantSeq || a.Duplicate != s.wantDup || b.Duplicate != s.wantDup {
				t.Fatalf("acks jetstream %+v, bus %+v; want seq %d duplicate %v", a, b, s.wantSeq, s.wantDup)
			}
			if a.Stream != "PUBA" || b.Stream != "PUBB" || a.Domain != b.Domain {
				t.Fatalf("acks jetstream %+v, bus %+v", a, b)
			}
		})
	}
}

// TestPublishNoStream: a subject no stream stores answers jetstream's
// ErrNoStreamResponse after the same retries.
func TestPublishNoStream(t *testing.T) {
	tj := testutil.StartJS(t, config.DurabilityOS)
	_, err := bus.Publish(testutil.Ctx(t), tj.NC, &nats.Msg{Subject: "nostream.x", Data: []byte("x")}, bus.PublishOpts{MsgID: "x"})
	if !errors.Is(err, jetstream.ErrNoStreamResponse) {
		t.Fatalf("error %v, want ErrNoStreamResponse", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := bus.Publish(ctx, tj.NC, &nats.Msg{Subject: "nostream.x"}, bus.PublishOpts{}); err == nil {
		t.Fatal("publish with a cancelled context succeeded")
	}
}

// TestParsePubAckForms checks every answer form nats-server writes from its
// template (as stream.go builds it) and the refusal form.
func TestParsePubAckForms(t *testing.T) {
	tmpl := func(stream, domain string) []byte {
		if domain != "" {
			return fmt.Appendf(nil, "{%q:%q,%q:%q,%q:", "stream", stream, "domain", domain, "seq")
		}
		return fmt.Appendf(nil, "{%q:%q,%q:", "stream", stream, "seq")
	}
	cases := []struct {
		data string
		want jetstream.PubAck
	}{
		{string(tmpl("HL7_IN", "")) + "42}", jetstream.PubAck{Stream: "HL7_IN", Sequence: 42}},
		{string(tmpl("AUDIT", "")) + "7,\"duplicate\": true}", jetstream.PubAck{Stream: "AUDIT", Sequence: 7, Duplicate: true}},
		{string(tmpl("FEED", "hub")) + "18446744073709551615}", jetstream.PubAck{Stream: "FEED", Domain: "hub", Sequence: 18446744073709551615}},
		{`{"stream":"KV_orders","seq":3,"val":"12"}`, jetstream.PubAck{Stream: "KV_orders", Sequence: 3, Value: "12"}},
		{`{"stream": "X", "seq": 9}`, jetstream.PubAck{Stream: "X", Sequence: 9}},
	}
	for _, c := range cases {
		got, err := bus.ParsePubAck([]byte(c.data))
		if err != nil || *got != c.want {
			t.Errorf("ParsePubAck(%s) = %+v, %v; want %+v", c.data, got, err, c.want)
		}
	}
	_, err := bus.ParsePubAck([]byte(`{"error":{"code":400,"err_code":10071,"description":"wrong last sequence: 5"}}`))
	if !errors.Is(err, jetstream.ErrKeyExists) {
		t.Errorf("refusal: %v", err)
	}
	for _, bad := range []string{``, `{}`, `{"seq":1}`, `not json`} {
		if _, err := bus.ParsePubAck([]byte(bad)); !errors.Is(err, jetstream.ErrInvalidJSAck) {
			t.Errorf("ParsePubAck(%q) error %v, want ErrInvalidJSAck", bad, err)
		}
	}
}
