package hl7

import (
	"os"
	"path/filepath"
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

// touchAll reads every field of every segment (unescaped value, first component
// and component count), as a consumer doing full field access would.
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
	for b.Loop() {
		if _, err := Parse(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseFullAccess parses the 2 KB ORU^R01 and reads every field
// (unescaped value, first component, counts): the target of 150,000
// parses/s per core is measured here.
func BenchmarkParseFullAccess(b *testing.B) {
	data := loadFixture(b, "oru_r01_v251.hl7")
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
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
