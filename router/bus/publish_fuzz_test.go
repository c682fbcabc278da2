package bus

import (
	"encoding/json"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

// FuzzParsePubAck: whatever the input, the hand reading of the server's
// template never disagrees with encoding/json: when it accepts an answer,
// encoding/json decodes the same acknowledgement from it, with no error.
func FuzzParsePubAck(f *testing.F) {
	for _, s := range []string{
		`{"stream":"HL7_IN","seq":42}`,
		`{"stream":"AUDIT","seq":7,"duplicate": true}`,
		`{"stream":"FEED","domain":"hub","seq":1}`,
		`{"stream":"FEED","domain":"hub","seq":18446744073709551615,"duplicate":true}`,
		`{"stream":"A\"B","seq":1}`,
		`{"stream":"A","seq":01}`,
		`{"stream":"A","seq":1}x`,
		`{"error":{"code":400,"err_code":10071,"description":"wrong last sequence"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fast, ok := parseTemplateAck(data)
		if !ok {
			return
		}
		var r pubAckResponse
		if err := json.Unmarshal(data, &r); err != nil {
			t.Fatalf("accepted %q, which encoding/json refuses: %v", data, err)
		}
		if r.Error != nil || r.PubAck == nil {
			t.Fatalf("accepted %q as %+v; encoding/json reads %+v", data, fast, r)
		}
		if *r.PubAck != *fast {
			t.Fatalf("%q: hand %+v, encoding/json %+v", data, *fast, *r.PubAck)
		}
		got, err := ParsePubAck(data)
		if err != nil || *got != *fast {
			t.Fatalf("ParsePubAck(%q) = %+v, %v", data, got, err)
		}
		_ = jetstream.PubAck{}
	})
}
