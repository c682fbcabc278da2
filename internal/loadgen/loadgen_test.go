package loadgen

import "testing"

func TestWithControlID(t *testing.T) {
	tests := []struct{ name, in, id, want string }{
		{"plain", "MSH|^~\\&|A|B|C|D|20240101||ORU^R01|X1|P|2.5\rPID|1", "n-1", "MSH|^~\\&|A|B|C|D|20240101||ORU^R01|n-1|P|2.5\rPID|1"},
		{"empty control id", "MSH|^~\\&|A|B|C|D|20240101||ORU^R01||P|2.5\r", "z", "MSH|^~\\&|A|B|C|D|20240101||ORU^R01|z|P|2.5\r"},
		{"last field", "MSH|^~\\&|A|B|C|D|20240101||ORU^R01|OLD\r", "new", "MSH|^~\\&|A|B|C|D|20240101||ORU^R01|new\r"},
		{"custom separator", "MSH!^~\\&!A!B!C!D!T!!ORU^R01!OLD!P!2.3\n", "q", "MSH!^~\\&!A!B!C!D!T!!ORU^R01!q!P!2.3\n"},
		{"too short left alone", "MSH|^~\\&|A\r", "q", "MSH|^~\\&|A\r"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(WithControlID(nil, []byte(tt.in), tt.id)); got != tt.want {
				t.Errorf("got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestAckCode(t *testing.T) {
	tests := []struct{ ack, want string }{
		{"MSH|^~\\&|R|F|S|F|20240101||ACK^R01|1|P|2.5\rMSA|AA|X1\r", "AA"},
		{"MSH|^~\\&|R|F|S|F|20240101||ACK|1|P|2.5\rMSA|CE|X1\rERR|||207\r", "CE"},
		{"MSH|^~\\&|R|F|S|F|20240101||ACK|1|P|2.5\rMSA|AR\r", "AR"},
		{"MSH|^~\\&|R|F|S|F|20240101||ACK|1|P|2.5\r", ""},
		{"MSH|^~\\&|R|F|S|F|20240101|XMSA|ACK|1|P|2.5\r", ""},
		{"MSA| ca |X1\n", "CA"},
		{"garbage\nMSA|AE|X1|no\n", "AE"},
	}
	for _, tt := range tests {
		if got := AckCode([]byte(tt.ack)); got != tt.want {
			t.Errorf("AckCode(%q) = %q, want %q", tt.ack, got, tt.want)
		}
	}
}

func TestWithProcessingID(t *testing.T) {
	for _, c := range []struct{ in, id, want string }{
		{"MSH|^~\\&|A|B|C|D|20240101||ORU^R01|X1|P|2.5\rPID|1", "D", "MSH|^~\\&|A|B|C|D|20240101||ORU^R01|X1|D|2.5\rPID|1"},
		{"MSH|^~\\&|A|B|C|D|20240101||ORU^R01|X1|P^T|2.5\r", "D", "MSH|^~\\&|A|B|C|D|20240101||ORU^R01|X1|D|2.5\r"},
		{"MSH|^~\\&|A\r", "D", "MSH|^~\\&|A\r"},
	} {
		if got := string(WithProcessingID([]byte(c.in), c.id)); got != c.want {
			t.Errorf("WithProcessingID(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
