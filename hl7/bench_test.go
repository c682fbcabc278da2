package hl7

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func loadFixture(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "hl7", name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// touchValues reads the unescaped value of every field of every segment.
func touchValues(m *Message) int {
	n := 0
	for i := 0; i < m.NumSegments(); i++ {
		s := m.Segment(i)
		for f := 1; f <= s.NumFields(); f++ {
			n += len(s.Field(f).Value())
		}
	}
	return n
}

// touchAll reads every field of every segment four ways (unescaped value, first
// component, component count, repetition count).
func touchAll(m *Message) int {
	n := 0
	for i := 0; i < m.NumSegments(); i++ {
		s := m.Segment(i)
		for f := 1; f <= s.NumFields(); f++ {
			fl := s.Field(f)
			n += len(fl.Value()) + len(fl.Component(1)) + fl.Components() + fl.Reps()
		}
	}
	return n
}

// BenchmarkParse parses the 2 KB synthetic ORU^R01 only.
func BenchmarkParse(b *testing.B) {
	data := loadFixture(b, "oru_r01_v251.hl7")
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	defer reportCPU(b)()
	for b.Loop() {
		if _, err := Parse(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseFullAccess parses the 2 KB ORU^R01 and reads the unescaped value
// of every field (308 fields in 19 segments): the target of 150,000 parses/s per core
// is measured here.
func BenchmarkParseFullAccess(b *testing.B) {
	data := loadFixture(b, "oru_r01_v251.hl7")
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	defer reportCPU(b)()
	for b.Loop() {
		m, err := Parse(data)
		if err != nil {
			b.Fatal(err)
		}
		if touchValues(m) == 0 {
			b.Fatal("nothing read")
		}
	}
}

// BenchmarkParseDeepAccess is BenchmarkParseFullAccess reading every field four
// ways (value, first component, component and repetition counts).
func BenchmarkParseDeepAccess(b *testing.B) {
	data := loadFixture(b, "oru_r01_v251.hl7")
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	defer reportCPU(b)()
	for b.Loop() {
		m, err := Parse(data)
		if err != nil {
			b.Fatal(err)
		}
		if touchAll(m) == 0 {
			b.Fatal("nothing read")
		}
	}
}

// BenchmarkParseTyped parses and builds the typed views a consumer of results
// uses: MSH, PID, the ORU grouping and every OBR/OBX.
func BenchmarkParseTyped(b *testing.B) {
	data := loadFixture(b, "oru_r01_v251.hl7")
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	defer reportCPU(b)()
	for b.Loop() {
		m, err := Parse(data)
		if err != nil {
			b.Fatal(err)
		}
		_ = m.MSH()
		_, _ = m.PID()
		o, err := m.ORU()
		if err != nil {
			b.Fatal(err)
		}
		for _, og := range o.Orders() {
			_ = og.Request()
			for i := range og.Observations {
				_ = og.Observations[i].Result()
			}
		}
	}
}

// BenchmarkAllocsPerField shows that allocations do not grow with the number of
// fields: messages with 10, 100 and 1,000 OBX segments (15 fields each, no
// escape sequences) are parsed and every field read; allocs/op stays the same.
func BenchmarkAllocsPerField(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		var sb strings.Builder
		sb.WriteString("MSH|^~\\&|LAB|FAC|PORTAL|HOSP|20240305||ORU^R01^ORU_R01|C1|P|2.5.1\rPID|1||MRN1^^^HOSP^MR||TEST^PATIENT\rOBR|1|P1|F1|CBC^Blood count^L\r")
		for i := 0; i < n; i++ {
			fmt.Fprintf(&sb, "OBX|%d|NM|%d^Analyte %d^L||%d.5|mmol/L^^UCUM|1-9|N|||F|||20240305120000||\r", i+1, 1000+i, i, i)
		}
		data := []byte(sb.String())
		b.Run(fmt.Sprintf("obx=%d", n), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			defer reportCPU(b)()
			for b.Loop() {
				m, err := Parse(data)
				if err != nil {
					b.Fatal(err)
				}
				touchAll(m)
			}
		})
	}
}

// BenchmarkFieldValues reads the unescaped value of every field of an
// already-parsed 2 KB ORU^R01 (308 fields): the cost of access alone.
func BenchmarkFieldValues(b *testing.B) {
	m, err := Parse(loadFixture(b, "oru_r01_v251.hl7"))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	defer reportCPU(b)()
	for b.Loop() {
		touchValues(m)
	}
}
