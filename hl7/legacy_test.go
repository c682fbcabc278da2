package hl7

import (
	"bytes"
	"strings"
)

// The raw header scanners PeekMSH replaces, kept here verbatim (but for names)
// so that FuzzPeekMSH and BenchmarkPeekMSH compare the new reading with the
// old one. Remove them once every caller has moved (issue 10 §4).

// legacyMSHFields is router/intake.go's mshFields: it splits the first MSH
// segment found in b into fields, numbered as in the standard (index n is
// MSH-n; index 1 is the separator). Only a segment that ends within b counts.
// It panics on "MSH\r" (seg[3] of a 3-byte segment).
func legacyMSHFields(b []byte) []string {
	i := bytes.Index(b, []byte("MSH"))
	if i < 0 || len(b) < i+4 {
		return nil
	}
	seg := b[i:]
	end := bytes.IndexAny(seg, "\r\n")
	if end < 0 {
		return nil
	}
	seg = seg[:end]
	sep := seg[3]
	parts := strings.Split(string(seg[4:]), string(sep))
	out := make([]string, 0, len(parts)+2)
	out = append(out, "MSH", string(sep))
	return append(out, parts...)
}

// legacyField is router/intake.go's field.
func legacyField(f []string, n int) string {
	if n < len(f) {
		return strings.TrimSpace(f[n])
	}
	return ""
}

// legacyHeaderFromBytes is hl7/ack.go's headerFromBytes before PeekMSH.
func legacyHeaderFromBytes(b []byte) ackHeader {
	h := ackHeader{d: DefaultDelimiters}
	i := bytes.Index(b, []byte("MSH"))
	if i < 0 {
		return h
	}
	b = b[i:]
	d, err := delimitersFrom(b, false)
	if err != nil {
		return h
	}
	h.d = d
	line, complete := b, false
	if j := bytes.IndexAny(line, "\r\n"); j >= 0 {
		line, complete = line[:j], true
	}
	parts := strings.Split(string(line), string(d.Field))
	if !complete {
		parts = parts[:len(parts)-1] // the last field may be cut short
	}
	for n := 3; n <= 18 && n-1 < len(parts); n++ {
		h.setField(n, parts[n-1])
	}
	h.setEvent()
	return h
}
