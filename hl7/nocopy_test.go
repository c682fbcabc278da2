package hl7

import (
	"bytes"
	"os"
	"runtime"
	"strings"
	"testing"
	"unsafe"
)

// TestParseNoCopy checks that ParseOptions.NoCopy gives the same message as a
// copying parse, shares the caller's bytes instead of copying them, and never
// writes to them.
func TestParseNoCopy(t *testing.T) {
	inputs := map[string][]byte{
		"latin1":   append([]byte("MSH|^~\\&|LAB|HOSP|||20260101||ORU^R01|C1|P|2.5|||||||8859/1\rPID|1||M1^^^HOSP^MR||M"), 0xFC, 'L', 'L', 'E', 'R', '\r'),
		"bom crlf": []byte("\xEF\xBB\xBFMSH|^~\\&|LAB|HOSP|||20260101||ORU^R01|C2|P|2.5.1\r\nPID|1||M2^^^HOSP^MR||DOE^JO\r\nOBX|1|TX|X||a\\T\\b\r\n"),
	}
	for _, name := range []string{"oru_r01_v23.hl7", "oru_r01_v251.hl7", "oru_r01_v28.hl7"} {
		b, err := os.ReadFile("../testdata/hl7/" + name)
		if err != nil {
			t.Fatal(err)
		}
		inputs[name] = b
	}
	for name, data := range inputs {
		t.Run(name, func(t *testing.T) {
			orig := bytes.Clone(data)
			copied, err := Parse(data)
			if err != nil {
				t.Fatal(err)
			}
			shared, err := ParseWithOptions(data, ParseOptions{NoCopy: true})
			if err != nil {
				t.Fatal(err)
			}
			if unsafe.SliceData(shared.Raw()) != unsafe.SliceData(data) {
				t.Error("NoCopy: Raw() is not the caller's buffer")
			}
			if unsafe.SliceData(copied.Raw()) == unsafe.SliceData(data) {
				t.Error("default: Raw() is the caller's buffer, want a copy")
			}
			if !bytes.Equal(shared.Encode(), orig) {
				t.Error("NoCopy: Encode differs from the input")
			}
			if a, b := describeAll(copied), describeAll(shared); a != b {
				t.Errorf("NoCopy parse differs:\ncopy:   %s\nshared: %s", a, b)
			}
			if !bytes.Equal(data, orig) {
				t.Error("Parse wrote to the caller's buffer")
			}
		})
	}
}

// describeAll renders every field value, component count and the typed MSH/PID.
func describeAll(m *Message) string {
	var b strings.Builder
	for _, s := range m.Segments() {
		b.WriteString(s.Name())
		for i := 1; i <= s.NumFields(); i++ {
			f := s.Field(i)
			b.WriteString("|" + f.Value())
		}
		b.WriteByte('\n')
	}
	msh := m.MSH()
	b.WriteString(msh.ControlID + msh.MessageType.String() + msh.SendingFacility.String() + m.Charset())
	if pid, ok := m.PID(); ok {
		for _, n := range pid.Names {
			b.WriteString(n.Family)
		}
	}
	return b.String()
}

// TestParseNoCopyAllocations bounds what NoCopy allocates for a 4 MiB message:
// far less than the message (the default parse copies it).
func TestParseNoCopyAllocations(t *testing.T) {
	data := bigMessage(4 << 20)
	measure := func(o ParseOptions) uint64 {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		m, err := ParseWithOptions(data, o)
		runtime.ReadMemStats(&after)
		if err != nil {
			t.Fatal(err)
		}
		runtime.KeepAlive(m)
		return after.TotalAlloc - before.TotalAlloc
	}
	if got := measure(ParseOptions{}); got < uint64(len(data)) {
		t.Errorf("copying parse allocated %d bytes, want at least the message (%d)", got, len(data))
	}
	if got := measure(ParseOptions{NoCopy: true}); got > 64<<10 {
		t.Errorf("NoCopy parse of %d bytes allocated %d bytes, want < 64 KiB", len(data), got)
	}
}

// bigMessage returns an ORU^R01 of about n bytes with one large ED OBX.
func bigMessage(n int) []byte {
	head := "MSH|^~\\&|LAB|HOSP|RG|HOSP|20260101||ORU^R01|BIG|P|2.5.1\rPID|1||M1^^^HOSP^MR||DOE^JO\rOBR|1|O1|F1|X^Y^LN\rOBX|1|ED|X^Y^LN||^application^pdf^Base64^"
	b := make([]byte, 0, n+16)
	b = append(b, head...)
	for len(b) < n {
		b = append(b, 'A')
	}
	return append(b, "||||||F\r"...)
}
