package hl7

import (
	"bytes"
	"testing"
)

// BenchmarkPeekMSH compares what the intake reads from a frame that does not
// parse (router/intake.go: enhancedFromBytes reads MSH-15 and MSH-16, then
// acceptAckFromBytes MSH-15 again) with the old scanner, mshFields (copied in
// legacy_test.go), and with PeekMSH. "ack" compares the header read for
// BuildACKFromBytes.
func BenchmarkPeekMSH(b *testing.B) {
	fixture := loadFixture(b, "oru_r01_v251.hl7")
	// A frame that fails to parse after its header, as the intake sees it; its
	// MSH-15 and MSH-16 are AL and NE.
	bad := append(bytes.Clone(fixture), "\rpid|lower-case segment ID\r"...)
	large := append(bytes.Clone(fixture), bytes.Repeat([]byte("OBX|1|TX|C||"+string(bytes.Repeat([]byte("x"), 200))+"\r"), 4096)...)
	for _, in := range []struct {
		name string
		b    []byte
	}{{"fixture", bad}, {"1MiB", large}} {
		b.Run("intake/old/"+in.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				f := legacyMSHFields(in.b)
				enhanced := legacyField(f, 15) != "" || legacyField(f, 16) != ""
				accept := legacyField(legacyMSHFields(in.b), 15)
				if !enhanced || accept != "AL" {
					b.Fatal("the fixture's MSH-15/16 (AL, NE) not read")
				}
			}
		})
		b.Run("intake/peek/"+in.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				h, ok := PeekMSH(in.b)
				enhanced := ok && h.Complete() && (len(bytes.TrimSpace(h.Field(15))) > 0 || len(bytes.TrimSpace(h.Field(16))) > 0)
				accept := ""
				if h, ok := PeekMSH(in.b); ok && h.Complete() {
					accept = string(bytes.TrimSpace(h.Field(15)))
				}
				if !enhanced || accept != "AL" {
					b.Fatal("the fixture's MSH-15/16 (AL, NE) not read")
				}
			}
		})
		b.Run("ack/old/"+in.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if h := legacyHeaderFromBytes(in.b); h.fields[10] == "" {
					b.Fatal("no MSH-10")
				}
			}
		})
		b.Run("ack/peek/"+in.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if h := headerFromBytes(in.b); h.fields[10] == "" {
					b.Fatal("no MSH-10")
				}
			}
		})
	}
}

// BenchmarkReadACK compares ReadACK with what the forwarder did before it
// (Parse, then MSA-1 and MSA-2).
func BenchmarkReadACK(b *testing.B) {
	orig, err := Parse(loadFixture(b, "oru_r01_v251.hl7"))
	if err != nil {
		b.Fatal(err)
	}
	ack := BuildACK(orig, AE, ErrorDetail{Code: CodeInternalError, Message: "not stored"})
	b.Run("parse", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			m, err := Parse(ack)
			if err != nil || m.First("MSA").Field(1).Value() != "AE" || m.First("MSA").Field(2).Value() == "" {
				b.Fatal(err)
			}
		}
	})
	b.Run("ReadACK", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if a, err := ReadACK(ack); err != nil || a.Code != AE || a.ControlID == "" {
				b.Fatal(err)
			}
		}
	})
}
