package hl7

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"unsafe"
)

// ParseOptions tunes Parse.
type ParseOptions struct {
	// FallbackCharset (an MSH-18 or IANA name) decodes messages whose bytes do not
	// fit their declared character set: no MSH-18 (UTF-8 assumed) or "ASCII" or
	// "UNICODE UTF-8" with bytes that are not valid UTF-8. When set, it is also
	// used for an MSH-18 this package does not know. Empty means
	// DefaultFallbackCharset for mismatched bytes and ErrUnsupportedCharset for an
	// unknown MSH-18.
	FallbackCharset string
	// Strict turns the lenient readings into errors: bytes that do not match the
	// declared character set, an unknown character set even with a fallback, and
	// an MSH without MSH-9, MSH-10, MSH-11 or MSH-12 (required in every version).
	Strict bool
	// NoCopy makes the Message use data's memory instead of a private copy: the
	// Message, Raw, and every string read from it (field values, the typed views)
	// share data's bytes, which must therefore not change while any of them is in
	// use. Parse never writes to data. It is for a caller that holds the buffer for
	// as long as it uses the message, such as an MLLP handler that parses a frame,
	// stores it and answers before the reader reuses the buffer, and spares it a
	// copy of every message (16 MiB for the largest frame). Without it (the
	// default) the caller may reuse data as soon as Parse returns.
	NoCopy bool
}

// Parse parses one HL7 v2 message with the default (lenient) options. The input
// may start with a UTF-8 byte-order mark and blank lines; segments may end with
// CR, LF or CRLF (mixed in one message). Parse copies data, so the caller may
// reuse its buffer (ParseOptions.NoCopy avoids the copy).
func Parse(data []byte) (*Message, error) { return ParseWithOptions(data, ParseOptions{}) }

var bom = []byte{0xEF, 0xBB, 0xBF}

// ParseWithOptions parses one HL7 v2 message.
func ParseWithOptions(data []byte, o ParseOptions) (*Message, error) {
	if len(data) > maxMessage {
		return nil, &ParseError{Err: ErrTooLarge, Detail: fmt.Sprintf("%d bytes", len(data))}
	}
	m := &Message{raw: data}
	if !o.NoCopy {
		m.raw = bytes.Clone(data)
	}
	if m.raw == nil {
		m.raw = []byte{}
	}
	start := skipLeading(m.raw)
	if start == len(m.raw) {
		return nil, &ParseError{Err: ErrEmpty}
	}
	m.start = start
	rest := m.raw[start:]
	if !bytes.HasPrefix(rest, []byte("MSH")) {
		pe := &ParseError{Err: ErrNoMSH, Line: 1, Offset: start, Detail: fmt.Sprintf("starts with %q", preview(rest))}
		if id := segID(rest); id == "FHS" || id == "BHS" {
			pe.Err, pe.Segment, pe.Detail = ErrBatch, id, "split the input with SplitMessages"
		}
		if bytes.HasPrefix(rest, []byte{0xFF, 0xFE}) || bytes.HasPrefix(rest, []byte{0xFE, 0xFF}) ||
			bytes.HasPrefix(rest, []byte{'M', 0, 'S', 0}) || bytes.HasPrefix(rest, []byte{0, 'M', 0, 'S'}) {
			pe.Err, pe.Detail = ErrUnsupportedCharset, "the input is UTF-16; send UTF-8 (MSH-18 UNICODE UTF-8) or an 8-bit character set"
		}
		return nil, pe
	}
	d, err := delimitersFrom(rest, o.Strict)
	if err != nil {
		err.Offset += start
		return nil, err
	}
	m.delims, m.dx = d, packDelims(d)
	if enc := mshField2(rest, d.Field); len(enc) == 5 && enc[2] == '\\' && enc[3] == '\\' {
		m.note(1, "MSH", `MSH-2 "`+string(enc)+`" doubles the escape character; read as "`+d.EncodingCharacters()+`"`)
	}

	if err := m.decode(rest, o); err != nil {
		return nil, err
	}
	if err := m.split(start, o.Strict); err != nil {
		return nil, err
	}
	if o.Strict {
		msh := &m.segs[0]
		for _, n := range []int{9, 10, 11, 12} {
			if msh.Field(n).IsEmpty() {
				return nil, &ParseError{Err: ErrMissingField, Segment: "MSH", Line: 1, Offset: start, Field: n,
					Detail: "MSH-" + fmt.Sprint(n) + " is required"}
			}
		}
	}
	return m, nil
}

// skipLeading returns the offset after a UTF-8 BOM and blank space (CR, LF, space,
// tab) at the start of b.
func skipLeading(b []byte) int {
	i := 0
	if bytes.HasPrefix(b, bom) {
		i = 3
	}
	for i < len(b) && (b[i] == '\r' || b[i] == '\n' || b[i] == ' ' || b[i] == '\t') {
		i++
	}
	return i
}

// preview returns up to 20 bytes of b for error messages.
func preview(b []byte) string {
	if len(b) > 20 {
		b = b[:20]
	}
	return string(b)
}

// mshField2 returns MSH-2 as written (b starts with "MSH" and a field separator).
func mshField2(b []byte, fs byte) []byte {
	enc := b[4:]
	n := 0
	for n < len(enc) && enc[n] != fs && enc[n] != '\r' && enc[n] != '\n' {
		n++
	}
	return enc[:n]
}

// quoteByte formats a byte for an error message: '&' or '\xff'.
func quoteByte(c byte) string {
	if c >= 0x20 && c < 0x7F {
		return fmt.Sprintf("%q", rune(c))
	}
	return fmt.Sprintf("'\\x%02x'", c)
}

// previewLine returns up to 20 bytes of s, stopping at a line break.
func previewLine(s string) string {
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	if len(s) > 20 {
		s = s[:20]
	}
	return s
}

// segID returns the first three bytes of b when they form a segment ID.
func segID(b []byte) string {
	if len(b) >= 3 && validSegID(b[0], b[1], b[2]) {
		return string(b[:3])
	}
	return ""
}

// StartsSegment reports whether line (one line of a message, without its
// terminator) starts a segment as Parse reads it: a three-character ID (A-Z,
// then A-Z or 0-9) followed by the field separator fs or by nothing. Parse
// reads any other line that is not blank (only spaces and tabs) as the
// continuation of the segment before it.
func StartsSegment(line []byte, fs byte) bool {
	return len(line) >= 3 && validSegID(line[0], line[1], line[2]) && (len(line) == 3 || line[3] == fs)
}

// IsBlankLine reports whether line (without its terminator) is one Parse
// skips: empty, or only spaces and tabs.
func IsBlankLine(line []byte) bool {
	for _, c := range line {
		if c != ' ' && c != '\t' {
			return false
		}
	}
	return true
}

func validSegID(a, b, c byte) bool {
	return isUpper(a) && isUpperDigit(b) && isUpperDigit(c)
}

func isUpper(c byte) bool      { return c >= 'A' && c <= 'Z' }
func isUpperDigit(c byte) bool { return isUpper(c) || (c >= '0' && c <= '9') }

// delimitersFrom reads MSH-1 and MSH-2 from b, which starts with "MSH".
func delimitersFrom(b []byte, strict bool) (Delimiters, *ParseError) {
	perr := func(field int, off int, detail string) *ParseError {
		return &ParseError{Err: ErrBadDelimiters, Segment: "MSH", Line: 1, Offset: off, Field: field, Detail: detail}
	}
	if len(b) >= 9 && string(b[3:9]) == "|^~\\&|" {
		return DefaultDelimiters, nil // the recommended delimiters, which nearly every sender uses
	}
	if len(b) < 4 || b[3] == '\r' || b[3] == '\n' {
		return Delimiters{}, perr(1, 3, "no field separator after MSH")
	}
	fs := b[3]
	if isUpperDigit(fs) || (fs >= 'a' && fs <= 'z') || fs == ' ' {
		return Delimiters{}, perr(1, 3, fmt.Sprintf("field separator %s is a letter, digit or space", quoteByte(fs)))
	}
	if fs < 0x21 || fs > 0x7E {
		return Delimiters{}, perr(1, 3, fmt.Sprintf("field separator %s is not a printable ASCII character", quoteByte(fs)))
	}
	d := Delimiters{Field: fs}
	enc := b[4:]
	n := 0
	for n < len(enc) && enc[n] != fs && enc[n] != '\r' && enc[n] != '\n' {
		n++
	}
	enc = enc[:n]
	if len(enc) == 0 {
		return Delimiters{}, perr(2, 4, "no encoding characters")
	}
	if !strict && len(enc) == 5 && enc[2] == '\\' && enc[3] == '\\' {
		// "^~\\&": the escape character doubled, an artefact of a string literal
		// copied out of source code. Read it as the four characters meant.
		enc = []byte{enc[0], enc[1], enc[2], enc[4]}
	}
	if len(enc) > 5 {
		return Delimiters{}, perr(2, 4, fmt.Sprintf("%q has %d encoding characters; at most 5 (component, repetition, escape, subcomponent, truncation)", enc, len(enc)))
	}
	for i, c := range enc {
		if c < 0x21 || c > 0x7E {
			return Delimiters{}, perr(2, 4+i, fmt.Sprintf("encoding character %d of %q is %s, not a printable ASCII character", i+1, enc, quoteByte(c)))
		}
		if j := bytes.IndexByte(enc[:i], c); j >= 0 {
			return Delimiters{}, perr(2, 4+i, fmt.Sprintf("%q repeats %s (encoding characters %d and %d)", enc, quoteByte(c), j+1, i+1))
		}
	}
	ptrs := []*byte{&d.Component, &d.Repetition, &d.Escape, &d.Subcomponent, &d.Truncation}
	for i, c := range enc {
		*ptrs[i] = c
	}
	return d, nil
}

// decode sets m.text (UTF-8) and m.charset from rest (the input from "MSH" on).
func (m *Message) decode(rest []byte, o ParseOptions) error {
	declared := msh18(rest, m.delims)
	fallback := o.FallbackCharset
	useFallback := func(why string) error {
		name := fallback
		if name == "" {
			name = DefaultFallbackCharset
		}
		cs, ok := lookupCharset(name)
		if !ok {
			return &ParseError{Err: ErrUnsupportedCharset, Segment: "MSH", Line: 1, Offset: m.start, Field: 18,
				Detail: fmt.Sprintf("fallback character set %q is not supported", name)}
		}
		if cs.enc == nil {
			if validUTF8(rest) {
				m.text, m.charset = bytesToString(rest), cs.name
				return nil
			}
			return &ParseError{Err: ErrCharsetMismatch, Segment: "MSH", Line: 1, Offset: m.start, Field: 18, Detail: why}
		}
		m.note(1, "MSH", why+"; decoded as "+cs.name)
		return m.decodeWith(cs, rest)
	}
	if declared == "" {
		if validUTF8(rest) {
			m.text = bytesToString(rest)
			if isASCII(rest) {
				m.charset = CharsetASCII
			} else {
				m.charset = CharsetUTF8
			}
			return nil
		}
		if o.Strict {
			return &ParseError{Err: ErrCharsetMismatch, Segment: "MSH", Line: 1, Offset: m.start, Field: 18,
				Detail: "no MSH-18 and the bytes are not valid UTF-8"}
		}
		return useFallback("no MSH-18 and the bytes are not valid UTF-8")
	}
	cs, ok := lookupCharset(declared)
	if !ok {
		if !o.Strict && isASCII(rest) {
			// Every character set a v2 message can be sent in is ASCII-compatible
			// where it matters here, so 7-bit bytes read the same under any of
			// them: the unknown name does not matter.
			m.text, m.charset = bytesToString(rest), declared
			m.note(1, "MSH", fmt.Sprintf("MSH-18 %q is not a known character set; the message is 7-bit ASCII", declared))
			return nil
		}
		if fallback == "" || o.Strict {
			return &ParseError{Err: ErrUnsupportedCharset, Segment: "MSH", Line: 1, Offset: m.start, Field: 18,
				Detail: fmt.Sprintf("MSH-18 %q", declared)}
		}
		return useFallback(fmt.Sprintf("MSH-18 %q is not supported", declared))
	}
	if cs.enc != nil {
		return m.decodeWith(cs, rest)
	}
	// ASCII or UTF-8: use the bytes as they are when they fit.
	if cs.name == CharsetASCII && isASCII(rest) || cs.name == CharsetUTF8 && validUTF8(rest) {
		m.text, m.charset = bytesToString(rest), cs.name
		return nil
	}
	if cs.name == CharsetASCII && validUTF8(rest) && !o.Strict {
		// Declared ASCII but carries UTF-8: read it as UTF-8, the likely intent.
		m.text, m.charset = bytesToString(rest), CharsetUTF8
		m.note(1, "MSH", `MSH-18 is "ASCII" but the message has UTF-8 characters; read as UTF-8`)
		return nil
	}
	why := fmt.Sprintf("MSH-18 is %q but the message has bytes outside it", declared)
	if o.Strict {
		return &ParseError{Err: ErrCharsetMismatch, Segment: "MSH", Line: 1, Offset: m.start, Field: 18, Detail: why}
	}
	return useFallback(why)
}

func (m *Message) decodeWith(cs charsetInfo, rest []byte) error {
	m.charset = cs.name
	if isASCII(rest) { // every supported single-byte set is ASCII-compatible
		m.text = bytesToString(rest)
		return nil
	}
	s, err := decodeBytes(cs, rest)
	m.decoded = &cs
	if err != nil {
		return &ParseError{Err: ErrCharsetMismatch, Segment: "MSH", Line: 1, Offset: m.start, Field: 18,
			Detail: fmt.Sprintf("decoding %s: %v", cs.name, err)}
	}
	m.text = s
	return nil
}

// msh18 returns the first repetition of MSH-18 from the raw MSH segment,
// trimmed. The segment may continue on lines that do not start a segment, as
// split reads it leniently.
//
// The common case is read in one pass over the first line: the value ends at a
// delimiter, or at the line's end when the next line starts a segment (or there
// is none). Anything else (MSH-18 past the first line, a line after it that
// may continue the segment) goes to msh18Wrapped.
func msh18(b []byte, d Delimiters) string {
	line := b
	if k := bytes.IndexByte(line, '\r'); k >= 0 {
		line = line[:k]
	}
	if k := bytes.IndexByte(line, '\n'); k >= 0 {
		line = line[:k]
	}
	// line = "MSH|^~\&|f3|f4|..."; MSH-18 follows the 17th field separator.
	pos := 0
	for n := 0; n < 17; n++ {
		k := bytes.IndexByte(line[pos:], d.Field)
		if k < 0 {
			return msh18Wrapped(b, d)
		}
		pos += k + 1
	}
	v := line[pos:]
	for k := 0; k < len(v); k++ {
		if c := v[k]; c == d.Field || c == d.Repetition && c != 0 || c == d.Component && c != 0 {
			return strings.TrimSpace(bytesToString(v[:k]))
		}
	}
	// The value runs to the line's end: it ends there unless a line that may
	// continue the segment follows.
	next := b[len(line):]
	for len(next) > 0 && (next[0] == '\r' || next[0] == '\n') {
		next = next[1:]
	}
	if len(next) == 0 || len(next) >= 3 && validSegID(next[0], next[1], next[2]) && (len(next) == 3 || next[3] == d.Field) {
		return strings.TrimSpace(bytesToString(v))
	}
	return msh18Wrapped(b, d)
}

// msh18Wrapped is msh18 for a MSH segment that may continue past its first
// line.
func msh18Wrapped(b []byte, d Delimiters) string {
	end := bytes.IndexAny(b, "\r\n")
	if end < 0 {
		end = len(b)
	}
	for pos := end; pos < len(b); {
		for pos < len(b) && (b[pos] == '\r' || b[pos] == '\n') {
			pos++
		}
		lineEnd := len(b)
		if i := bytes.IndexAny(b[pos:], "\r\n"); i >= 0 {
			lineEnd = pos + i
		}
		line := b[pos:lineEnd]
		if len(line) >= 3 && validSegID(line[0], line[1], line[2]) && (len(line) == 3 || line[3] == d.Field) {
			break // the next segment
		}
		if !isBlank(bytesToString(line)) {
			end = lineEnd // a continuation line
		}
		pos = lineEnd
	}
	b = b[:end]
	// b = "MSH|^~\&|f3|f4|..."; MSH-n for n >= 2 is part n-1 after splitting at |.
	for i := 0; i < 17; i++ {
		j := bytes.IndexByte(b, d.Field)
		if j < 0 {
			return ""
		}
		b = b[j+1:]
	}
	if j := bytes.IndexByte(b, d.Field); j >= 0 {
		b = b[:j]
	}
	if d.Repetition != 0 {
		if j := bytes.IndexByte(b, d.Repetition); j >= 0 {
			b = b[:j]
		}
	}
	if d.Component != 0 { // never valid in an ID, but strip a stray "^" rather than fail
		if j := bytes.IndexByte(b, d.Component); j >= 0 {
			b = b[:j]
		}
	}
	return strings.TrimSpace(bytesToString(b)) // b is part of the private copy: never modified
}

// nameCount counts segment occurrences without a map; key is the ID's three
// bytes.
type nameCount struct {
	key uint32
	n   int32
}

// Byte classes used by split.
const (
	cFS  uint8 = 0x40 // field separator
	cEOL uint8 = 0x80 // CR or LF
	// fRep, fComp, fSub and fEsc mark the other delimiters.
)

// byteClasses returns split's class of every byte under d: cFS for the field
// separator, cEOL for CR and LF, and the flag bit of each other delimiter.
func byteClasses(d Delimiters) [256]uint8 {
	var cls [256]uint8
	cls['\r'], cls['\n'] = cEOL, cEOL
	for _, x := range [...]struct {
		c byte
		f uint8
	}{{d.Repetition, fRep}, {d.Component, fComp}, {d.Subcomponent, fSub}, {d.Escape, fEsc}} {
		if x.c != 0 {
			cls[x.c] |= x.f
		}
	}
	cls[d.Field] = cFS
	return cls
}

// defaultClasses is byteClasses(DefaultDelimiters), which nearly every message
// uses: built once instead of for every message.
var defaultClasses = byteClasses(DefaultDelimiters)

// split cuts m.text into segments and records every field separator with the
// content flags of the field after it, in one pass over the bytes.
//
// A line starts a segment when it begins with a three-character ID followed by
// the field separator (or the end of the line). Blank lines are skipped. Any
// other line continues the previous segment in lenient mode (a sender wrapped a
// long field, or put a bare line break in text) and is ErrBadSegmentID in strict
// mode.
//
// The index is built 16 bits an entry (Message.f16) while every segment is
// shorter than compactSegment; the first longer one stops that pass, and the
// text is split again into 32-bit entries (Message.fields), which costs a
// second pass only to messages with a segment of 4 KiB or more.
func (m *Message) split(start int, strict bool) error {
	notes := len(m.notes)
	if len(m.text) < wideIndex && !hasLongLine(m.text) {
		f16, err := splitIndex[uint16](m, start, strict, 4, uint32(fAll), compactSegment)
		if err != errLongSegment {
			if err == nil {
				m.f16, m.fsh, m.fmask, m.dxr = f16, 4, uint32(fAll), m.dx
			}
			return err
		}
		m.notes = m.notes[:notes] // the second pass notes them again
	}
	sh, fmask := uint(4), uint32(fAll)
	if len(m.text) >= wideIndex {
		sh, fmask = 0, 0
	}
	m.fsh, m.fmask, m.dxr = sh, fmask, m.dx
	if fmask == 0 {
		m.dxr |= uint64(fAll)
	}
	fields, err := splitIndex[uint32](m, start, strict, sh, fmask, 0)
	if err != nil {
		return err
	}
	m.fields = fields
	return nil
}

// hasLongLine reports whether t has a line of compactSegment bytes or more,
// looking only when t is 64 KiB or more: there a 16-bit pass that stops at
// such a line would have allocated its index for nothing (2 bytes a field
// separator, up to twice the text), which a hostile message of one huge
// line must not cost. A shorter text, or a long segment made of short
// continuation lines, only costs the 16-bit pass up to the segment. It reads
// each byte at most once.
func hasLongLine(t string) bool {
	if len(t) < 1<<16 {
		return false
	}
	for len(t) >= compactSegment {
		i := strings.IndexAny(t[:compactSegment], "\r\n")
		if i < 0 {
			return true
		}
		t = t[i+1:]
	}
	return false
}

// compactSegment bounds the segments of a message indexed 16 bits an entry:
// an offset in the segment of 12 bits and the 4 content flags.
const compactSegment = 1 << 12

// errLongSegment stops splitIndex's 16-bit pass at a segment of
// compactSegment bytes or more.
var errLongSegment = errors.New("a segment too long for the 16-bit index")

// splitIndex is split's pass with index entries of type E: each is the
// offset of a separator (or a segment's end) from the segment's start,
// shifted left by sh and or-ed with the content flags (fmask). With limit > 0
// it fails with errLongSegment at the first segment of limit bytes or more,
// and gives the segments their fast-path field counts (Segment.nf).
func splitIndex[E uint16 | uint32](m *Message, start int, strict bool, sh uint, fmask uint32, limit int) ([]E, error) {
	t := m.text
	d := m.delims
	cls, vt := &defaultClasses, &defaultVecTab
	var own [256]uint8
	var ownVec vecTab
	if d != DefaultDelimiters {
		own, ownVec = byteClasses(d), newVecTab(d)
		cls, vt = &own, &ownVec
	}
	fs := d.Field

	// Every segment starts a line, and every segment adds its separators and one
	// end marker to fields: both are sized exactly enough from vectorised counts.
	lines := strings.Count(t, "\r") + strings.Count(t, "\n") + 1
	segs := make([]Segment, 0, lines)
	fields := make([]E, 0, strings.Count(t, string(fs))+lines)
	var names [32]nameCount   // occurrences by segment ID
	distinct := 0             // IDs in names
	var many map[uint32]int32 // replaces names past 24 IDs
	var (
		cur   = -1  // index in segs of the segment being read
		end   int   // end of its last line so far
		flags uint8 // flags of the field being read
		phys  int   // non-blank lines so far
		conts int   // continuation lines so far
	)
	// closeSeg records the flags of the current segment's last field and its
	// end, and reports whether the segment fits the limit.
	closeSeg := func() bool {
		if cur >= 0 {
			sg := &segs[cur]
			if len(fields) > int(sg.bFrom) {
				fields[len(fields)-1] |= E(flags) & E(fmask)
			}
			sg.bTo = int32(len(fields))
			n := end - int(sg.off)
			if limit > 0 {
				if n >= limit {
					return false
				}
				if cur > 0 {
					sg.nf = sg.bTo - sg.bFrom
				}
			}
			fields = append(fields, E(n)<<sh)
		}
		flags = 0
		return true
	}
	p := 0
	for p < len(t) {
		// At the start of a line. Skip it if blank.
		q := p
		for q < len(t) && (t[q] == ' ' || t[q] == '\t') {
			q++
		}
		if q == len(t) || t[q] == '\r' || t[q] == '\n' {
			p = q
			for p < len(t) && (t[p] == '\r' || t[p] == '\n') {
				p++
			}
			continue
		}
		phys++
		i := p
		if len(t)-p >= 3 && validSegID(t[p], t[p+1], t[p+2]) && (len(t)-p == 3 || cls[t[p+3]]&(cFS|cEOL) != 0) {
			if cur >= 0 {
				switch name := t[p : p+3]; name {
				case "MSH":
					return nil, &ParseError{Err: ErrMultipleMessages, Segment: name, Line: phys, Offset: start + p,
						Detail: "split the input with SplitMessages"}
				case "FHS", "BHS", "BTS", "FTS":
					return nil, &ParseError{Err: ErrBatch, Segment: name, Line: phys, Offset: start + p,
						Detail: "split the input with SplitMessages"}
				}
				if !closeSeg() {
					return nil, errLongSegment
				}
			}
			key := uint32(t[p])<<16 | uint32(t[p+1])<<8 | uint32(t[p+2])
			occ := int32(0)
			if many != nil {
				many[key]++
				occ = many[key]
			} else {
				// An open-addressed table: a key (three letters or digits) is
				// never 0, and at most 24 of its 32 slots are used.
				h := key * 0x9E3779B1 >> 27
				for names[h].key != key && names[h].key != 0 {
					h = (h + 1) & 31
				}
				if names[h].key == 0 {
					names[h].key = key
					distinct++
				}
				names[h].n++
				occ = names[h].n
				if distinct > 24 {
					// A message with more distinct segment IDs than any real
					// one (Z-segments are free to name): a map keeps the
					// count linear in the number of segments.
					many = make(map[uint32]int32, 2*distinct)
					for _, c := range names {
						if c.key != 0 {
							many[c.key] = c.n
						}
					}
				}
			}
			cur = len(segs)
			segs = append(segs, Segment{msg: m, off: int32(p), bFrom: int32(len(fields)),
				index: int32(cur), occurrence: occ})
			i = p + 3
		} else if strict || cur < 0 {
			return nil, &ParseError{Err: ErrBadSegmentID, Line: phys, Offset: start + p,
				Detail: fmt.Sprintf("line starts with %q (a segment starts with a 3-character ID of A-Z/0-9 followed by %q)", previewLine(t[p:]), fs)}
		}
		if i == p { // a continuation line
			if limit > 0 && p-int(segs[cur].off) >= limit {
				return nil, errLongSegment
			}
			conts++
			if conts <= maxContNotes {
				m.note(phys, segs[cur].Name(), "a line that does not start a segment was read as the continuation of the segment before it (a wrapped field)")
			}
		}
		joined := -1
		if useBlocks && unsafe.Sizeof(E(0)) == 2 && i+64 <= len(t) {
			// The 16-bit index (E is uint16), 64 bytes at a time.
			bFrom := int(segs[cur].bFrom)
			if len(fields) > bFrom {
				fields[len(fields)-1] |= E(flags)
			}
			flags = 0
			f16 := unsafe.Slice((*uint16)(unsafe.Pointer(unsafe.SliceData(fields))), cap(fields))
			var n, why int
			i, n, why = scanBlocks(t, i, int(segs[cur].off), vt, cls, f16, len(fields), bFrom)
			fields = fields[:n]
			if why == stopLong {
				return nil, errLongSegment
			}
			if why != stopEOL {
				// Fewer than 64 bytes left, or a separator followed by a
				// space: the rest of the line byte by byte.
				i, fields, flags, joined = scanLine(t, i, int(segs[cur].off), cls, fields, bFrom, flags, sh, fmask)
			}
		} else {
			i, fields, flags, joined = scanLine(t, i, int(segs[cur].off), cls, fields, int(segs[cur].bFrom), flags, sh, fmask)
		}
		if joined >= 0 {
			fieldNo := len(fields) - int(segs[cur].bFrom)
			if cur == 0 {
				fieldNo++
			}
			return nil, &ParseError{Err: ErrJoinedSegments, Segment: segs[cur].Name(), Line: phys, Offset: start + joined + 1, Field: fieldNo,
				Detail: fmt.Sprintf("field %d is %q, the start of a %s segment", fieldNo, t[joined+1:joined+5], t[joined+2:joined+5])}
		}
		end = i
		p = i
		for p < len(t) && (t[p] == '\r' || t[p] == '\n') {
			p++
		}
	}
	if !closeSeg() {
		return nil, errLongSegment
	}
	if conts > maxContNotes {
		m.note(0, "", fmt.Sprintf("%d more lines that do not start a segment were read as continuations (only the first %d are listed)", conts-maxContNotes, maxContNotes))
	}
	m.segs = segs
	return fields, nil
}

// maxContNotes bounds the continuation-line notes a message gets one by one:
// a hostile message of millions of short lines would otherwise cost a Note
// (several times its bytes) per line; the rest are counted in one note.
const maxContNotes = 32

// scanLine reads the rest of a line of t from i byte by byte, in a segment
// that starts at base (entries are offsets from there): the 32-bit index, and
// what split's block reading leaves (the last 63 bytes of the text, a line
// with a separator followed by a space). For each field separator it stores
// the flags of the field the separator ends in the entry before (when that
// entry belongs to the segment: at or after bFrom) and appends an entry for
// the separator. Ordinary bytes have class 0 and the other delimiters only
// flag bits, so they are or-ed into flags without a branch; only a field
// separator or a line end stops the loop. It is a function of its own so that
// the loop's state stays in registers. It returns where the line ends, the
// index, the flags of the field still open and, when a field is a space and a
// segment ID ("...| OBX|...": segments joined without a terminator), the
// offset of the separator before it, else -1.
func scanLine[E uint16 | uint32](t string, i, base int, cls *[256]uint8, fields []E, bFrom int, flags uint8, sh uint, fmask uint32) (int, []E, uint8, int) {
	_ = cls[0] // one nil check here instead of one per byte in the loop
	for {
		var c uint8
		for ; uint(i) < uint(len(t)); i++ {
			if c = cls[t[i]]; c&(cFS|cEOL) != 0 {
				break
			}
			flags |= c
		}
		if c != cFS { // end of line or of text
			return i, fields, flags, -1
		}
		if len(fields) > bFrom {
			fields[len(fields)-1] |= E(flags) & E(fmask)
		}
		flags = 0
		fields = append(fields, E(i-base)<<sh)
		if i+5 < len(t) && t[i+1] == ' ' && cls[t[i+5]] == cFS && validSegID(t[i+2], t[i+3], t[i+4]) && knownSegment(t[i+2:i+5]) {
			return i, fields, flags, i
		}
		i++
	}
}

func isBlank(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != ' ' && s[i] != '\t' {
			return false
		}
	}
	return true
}
