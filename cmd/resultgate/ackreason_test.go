package main

import (
	"testing"

	"github.com/resultgate/resultgate/hl7"
)

// TestAckReason checks what send prints after a negative ACK's code, for the
// ACKs resultgate writes (v2.5 ERR-8, v2.3 MSA-3) and for odd ones.
func TestAckReason(t *testing.T) {
	orig := func(ver string) *hl7.Message {
		m, err := hl7.Parse([]byte("MSH|^~\\&|LIS|LAB|RG|HOSP|20260101||ORU^R01|C1|P|" + ver + "\rPID|1\r"))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	e := hl7.ErrorDetail{Code: hl7.CodeUnsupportedType, Message: "message type not accepted"}
	tests := []struct {
		name string
		ack  []byte
		want string
	}{
		{"v2.5 ERR-8", hl7.BuildACK(orig("2.5.1"), hl7.AR, e), ": message type not accepted"},
		{"v2.3 MSA-3", hl7.BuildACK(orig("2.3"), hl7.AR, e), ": message type not accepted"},
		{"two ERR-8", []byte("MSA|AE|C1\rERR||||E||||first\rERR||||E||||second\r"), ": first; second"},
		{"code text only", []byte("MSH|^~\\&|A\rMSA|AE|C1\rERR|||207^Application internal error^HL70357|E\r"), ": Application internal error"},
		{"no text", []byte("MSA|AE|C1\r"), ""},
		{"no ACK", []byte("garbage"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ackReason(tt.ack); got != tt.want {
				t.Errorf("ackReason = %q, want %q", got, tt.want)
			}
		})
	}
}
