package hl7

import "bytes"

// MSHPeek is a message header read from raw bytes by PeekMSH, without parsing
// the message: the delimiters from MSH-1 and MSH-2 and the fields of the MSH
// segment as written (escaped, in the sender's character set). It refers to
// the bytes given to PeekMSH and is valid only as long as they are unchanged.
//
// It serves the paths that cannot, or need not, parse a whole message: an
// answer to a frame that does not parse or is too large to read, a header
// rewritten in place (the load generator's MSH-10), and an ACK read from a
// downstream engine.
type MSHPeek struct {
	d        Delimiters
	b        []byte // the input given to PeekMSH
	off      int    // offset of "MSH" in b
	end      int    // offset in b of the segment's terminator, or len(b)
	complete bool   // a CR or LF ends the segment within b
}

// PeekMSH finds the first "MSH" in b and reads its delimiters and field
// boundaries, up to the first CR or LF (a header is one line: a segment
// wrapped across lines is read up to the break) or the end of b. It reports
// false when b holds no "MSH" or its MSH-1/MSH-2 are unusable (as Parse would
// reject them, leniently: "^~\\&", the escape character doubled by a string
// literal, reads as "^~\&"). A cut MSH-2 (b ends inside it) still gives the
// delimiters it spells so far.
//
// It allocates nothing and reads at most the header line, so it is cheap on a
// frame of any size; it does not decode the character set or escapes.
func PeekMSH(b []byte) (MSHPeek, bool) {
	i := bytes.Index(b, mshID)
	if i < 0 {
		return MSHPeek{}, false
	}
	d, err := delimitersFrom(b[i:], false)
	if err != nil {
		return MSHPeek{}, false
	}
	p := MSHPeek{d: d, b: b, off: i, end: len(b)}
	if j := lineEnd(b[i:]); j >= 0 {
		p.end, p.complete = i+j, true
	}
	return p, true
}

var mshID = []byte("MSH")

// lineEnd returns the index of the first CR or LF in b, or -1. It looks in
// windows so that a long segment ended by LF costs no scan of the whole input
// for a CR (and the other way round).
func lineEnd(b []byte) int {
	const window = 512
	for off := 0; off < len(b); off += window {
		w := b[off:min(len(b), off+window)]
		cr := bytes.IndexByte(w, '\r')
		if cr >= 0 {
			w = w[:cr]
		}
		if lf := bytes.IndexByte(w, '\n'); lf >= 0 {
			return off + lf
		}
		if cr >= 0 {
			return off + cr
		}
	}
	return -1
}

// Delimiters returns the delimiters read from MSH-1 and MSH-2.
func (p MSHPeek) Delimiters() Delimiters { return p.d }

// Complete reports whether a CR or LF ends the header within the input. When
// it does not, the input may have been cut inside the header (a frame's first
// bytes), and the last field may be incomplete.
func (p MSHPeek) Complete() bool { return p.complete }

// Segment returns the MSH segment, from "MSH" up to (not including) its
// terminator or the end of the input.
func (p MSHPeek) Segment() []byte { return p.b[p.off:p.end] }

// NumFields returns the number of the last field present: MSH-1 is the field
// separator, so "MSH|^~\&|A" has 3 and "MSH|^~\&|A|" has 4 (MSH-4 empty).
func (p MSHPeek) NumFields() int {
	if p.b == nil {
		return 0
	}
	return 2 + bytes.Count(p.b[p.off+4:p.end], []byte{p.d.Field})
}

// Field returns MSH-n as written, nil when the header has no field n (n = 1 is
// the field separator itself, n = 2 the encoding characters).
func (p MSHPeek) Field(n int) []byte {
	s, e, ok := p.FieldSpan(n)
	if !ok {
		return nil
	}
	return p.b[s:e:e]
}

// FieldSpan returns the offsets of MSH-n in the input given to PeekMSH (the
// field is input[start:end]), or false when the header has no field n.
func (p MSHPeek) FieldSpan(n int) (start, end int, ok bool) {
	if p.b == nil || n < 1 {
		return 0, 0, false
	}
	if n == 1 {
		return p.off + 3, p.off + 4, true
	}
	// Count separators byte by byte: header fields are short, so this beats
	// a call to bytes.IndexByte per field.
	fs := p.d.Field
	pos, k := p.off+4, 2 // MSH-2 starts after "MSH|"
	for ; k < n && pos < p.end; pos++ {
		if p.b[pos] == fs {
			k++
		}
	}
	if k < n {
		return 0, 0, false
	}
	e := pos
	for e < p.end && p.b[e] != fs {
		e++
	}
	return pos, e, true
}
