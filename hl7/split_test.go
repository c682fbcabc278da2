package hl7

import (
	"errors"
	"strings"
	"testing"
)

const (
	m1 = "MSH|^~\\&|A|B|||1||ADT^A04|M1|P|2.5\rPID|1\r"
	m2 = "MSH|^~\\&|A|B|||1||ADT^A04|M2|P|2.5\rPID|2\rPV1|1\r"
	m3 = "MSH|^~\\&|A|B|||1||ORU^R01|M3|P|2.5\rOBX|1\r"
)

func TestSplitMessages(t *testing.T) {
	tests := []struct {
		name string
		data string
		want []string
	}{
		{"single message", m1, []string{m1}},
		{"single without final CR", strings.TrimSuffix(m1, "\r"), []string{strings.TrimSuffix(m1, "\r")}},
		{"back to back", m1 + m2 + m3, []string{m1, m2, m3}},
		{"back to back LF", strings.ReplaceAll(m1+m2, "\r", "\n"), []string{strings.ReplaceAll(m1, "\r", "\n"), strings.ReplaceAll(m2, "\r", "\n")}},
		{"blank lines between", m1 + "\r\n\r\n" + m2, []string{m1 + "\r\n\r\n", m2}},
		{"batch", "BHS|^~\\&|A\r" + m1 + m2 + "BTS|2\r", []string{m1, m2}},
		{"file with two batches", "FHS|^~\\&|A\rBHS|^~\\&|A\r" + m1 + m2 + "BTS|2\rBHS|^~\\&|A\r" + m3 + "BTS|1\rFTS|2\r", []string{m1, m2, m3}},
		{"file without batch", "FHS|^~\\&|A\r" + m1 + m2 + "FTS|1\r", []string{m1, m2}},
		{"file CRLF", strings.ReplaceAll("FHS|^~\\&\rBHS|^~\\&\r"+m1+"BTS|1\rFTS|1\r", "\r", "\r\n"), []string{strings.ReplaceAll(m1, "\r", "\r\n")}},
		{"empty batch", "BHS|^~\\&|A\rBTS|0\r", []string{}},
		{"BOM before batch", "\xEF\xBB\xBFBHS|^~\\&\r" + m1 + "BTS|1\r", []string{m1}},
		{"trailing blank after FTS", "FHS|^~\\&\r" + m1 + "FTS|1\r\n\n", []string{m1}},
		{"BTS without BHS is tolerated", m1 + "BTS|1\r", []string{m1}},
		{"wrapped text line starting with MSH", "MSH|^~\\&|A\nOBX|1|TX|C||see the\nMSH segment\n", []string{"MSH|^~\\&|A\nOBX|1|TX|C||see the\nMSH segment\n"}},
		{"custom field separator", "MSH!$r?@!A\rPID!1\rMSH!$r?@!B\r", []string{"MSH!$r?@!A\rPID!1\r", "MSH!$r?@!B\r"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := SplitMessages([]byte(tt.data))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d messages, want %d: %q", len(got), len(tt.want), got)
			}
			for i := range got {
				if string(got[i]) != tt.want[i] {
					t.Errorf("message %d = %q, want %q", i, got[i], tt.want[i])
				}
				if _, err := Parse(got[i]); err != nil {
					t.Errorf("message %d does not parse: %v", i, err)
				}
			}
		})
	}
}

func TestSplitMessagesSubslices(t *testing.T) {
	data := []byte("BHS|^~\\&\r" + m1 + m2 + "BTS|2\r")
	got, err := SplitMessages(data)
	if err != nil {
		t.Fatal(err)
	}
	if &got[0][0] != &data[len("BHS|^~\\&\r")] {
		t.Errorf("messages must be sub-slices of the input")
	}
	if cap(got[0]) != len(got[0]) {
		t.Errorf("an append to one message must not overwrite the next (cap %d len %d)", cap(got[0]), len(got[0]))
	}
}

func TestSplitBatchEnvelope(t *testing.T) {
	data := "FHS|^~\\&|F\rBHS|^~\\&|B1\r" + m1 + "BTS|1\rBHS|^~\\&|B2\r" + m2 + m3 + "BTS|2\rFTS|2\r"
	b, err := SplitBatch([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	if string(b.FHS) != "FHS|^~\\&|F" || string(b.FTS) != "FTS|2" || len(b.Batches) != 2 {
		t.Fatalf("envelope: %q %q %d", b.FHS, b.FTS, len(b.Batches))
	}
	if string(b.Batches[0].BHS) != "BHS|^~\\&|B1" || string(b.Batches[0].BTS) != "BTS|1" || len(b.Batches[0].Messages) != 1 {
		t.Errorf("batch 1: %+v", b.Batches[0])
	}
	if string(b.Batches[1].BHS) != "BHS|^~\\&|B2" || len(b.Batches[1].Messages) != 2 {
		t.Errorf("batch 2: %q %d", b.Batches[1].BHS, len(b.Batches[1].Messages))
	}
}

func TestSplitMessagesErrors(t *testing.T) {
	tests := []struct {
		name, data string
		is         error
		err        string
	}{
		{"empty", "", ErrEmpty, "hl7: empty message"},
		{"no MSH", "PID|1\rPV1|1\r", ErrNoMSH, `hl7: segment (line 1, byte 0): message does not start with MSH: starts with "PID|1"`},
		{"BHS inside a message in a batch", "BHS|^~\\&\r" + m1 + "BHS|^~\\&\r" + m2 + "BTS|1\r", ErrBadBatch, `hl7: segment BHS (line 4, byte 50): malformed batch: BHS inside a message (no BTS before it)`},
		{"BHS inside a batch", "BHS|^~\\&\rBHS|^~\\&\r" + m1 + "BTS|1\r", ErrBadBatch, `hl7: segment BHS (line 2, byte 9): malformed batch: BHS inside a batch (no BTS before it)`},
		{"BHS after a bare message", m1 + "BHS|^~\\&\r" + m2 + "BTS|1\r", ErrBadBatch, `hl7: segment BHS (line 3, byte 41): malformed batch: BHS inside a message outside any batch`},
		{"FHS not first", "BHS|^~\\&\r" + m1 + "FHS|^~\\&\r", ErrBadBatch, `hl7: segment FHS (line 4, byte 50): malformed batch: FHS is only allowed as the first segment`},
		{"data after FTS", "FHS|^~\\&\r" + m1 + "FTS|1\r" + m2, ErrBadBatch, `hl7: segment MSH (line 5, byte 56): malformed batch: "MSH|^~\\&|A|B|||1||AD" after FTS`},
		{"FTS inside a batch", "FHS|^~\\&\rBHS|^~\\&\r" + m1 + "FTS|1\r", ErrBadBatch, `hl7: segment FTS (line 5, byte 59): malformed batch: FTS inside a batch (no BTS before it)`},
		{"segment between messages", "BHS|^~\\&\r" + m1 + "BTS|1\rPID|9\r", ErrBadBatch, `hl7: segment PID (line 5, byte 56): malformed batch: "PID|9" is outside any message`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := SplitMessages([]byte(tt.data))
			if !errors.Is(err, tt.is) {
				t.Fatalf("err = %v, want %v", err, tt.is)
			}
			if err.Error() != tt.err {
				t.Errorf("error\n got %s\nwant %s", err, tt.err)
			}
		})
	}
}
