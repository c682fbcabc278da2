package hl7

import (
	"bytes"
	"fmt"
	"strings"
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
}

// Parse parses one HL7 v2 message with the default (lenient) options. The input
// may start with a UTF-8 byte-order mark and blank lines; segments may end with
// CR, LF or CRLF (mixed in one message). Parse copies data, so the caller may
// reuse its buffer.
func Parse(data []byte) (*Message, error) { return ParseWithOptions(data, ParseOptions{}) }

var bom = []byte{0xEF, 0xBB, 0xBF}

// ParseWithOptions parses one HL7 v2 message.
func ParseWithOptions(data []byte, o ParseOptions) (*Message, error) {
	m := &Message{raw: bytes.Clone(data)}
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
			pe.Err, pe.Segment, pe.Detail = ErrBatch, id, "split it with SplitMessages"
		}
		return nil, pe
	}
	d, err := delimitersFrom(rest, o.Strict)
	if err != nil {
		err.Offset += start
		return nil, err
	}
	m.delims = d

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

// ErrMissingField means, in strict mode, that a field every version requires is empty.
var ErrMissingField = fmt.Errorf("required field missing")

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

// segID returns the first three bytes of b when they form a segment ID.
func segID(b []byte) string {
	if len(b) >= 3 && validSegID(b[0], b[1], b[2]) {
		return string(b[:3])
	}
	return ""
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
	if len(b) < 4 || b[3] == '\r' || b[3] == '\n' {
		return Delimiters{}, perr(1, 3, "no field separator after MSH")
	}
	fs := b[3]
	if isUpperDigit(fs) || (fs >= 'a' && fs <= 'z') || fs == ' ' {
		return Delimiters{}, perr(1, 3, fmt.Sprintf("field separator %q is a letter, digit or space", fs))
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
		if c == ' ' || c == 0 {
			return Delimiters{}, perr(2, 4+i, fmt.Sprintf("encoding character %d of %q is a space or NUL", i+1, enc))
		}
		if j := bytes.IndexByte(enc[:i], c); j >= 0 {
			return Delimiters{}, perr(2, 4+i, fmt.Sprintf("%q repeats %q (encoding characters %d and %d)", enc, c, j+1, i+1))
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
	if err != nil {
		return &ParseError{Err: ErrCharsetMismatch, Segment: "MSH", Line: 1, Offset: m.start, Field: 18,
			Detail: fmt.Sprintf("decoding %s: %v", cs.name, err)}
	}
	m.text = s
	return nil
}

// msh18 returns the first repetition of MSH-18 from the raw MSH line, trimmed.
func msh18(b []byte, d Delimiters) string {
	end := bytes.IndexAny(b, "\r\n")
	if end >= 0 {
		b = b[:end]
	}
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
	return strings.TrimSpace(string(b))
}

// nameCount counts segment occurrences without a map.
type nameCount struct {
	name string
	n    int
}

// split cuts m.text into segments and records field separator offsets.
func (m *Message) split(start int, strict bool) error {
	t := m.text
	fs := m.delims.Field
	if m.bounds == nil {
		m.bounds = make([]int32, 0, len(t)/6+8)
	}
	type segBounds struct{ from, to int }
	m.segs = make([]Segment, 0, strings.Count(t, "\r")+strings.Count(t, "\n")/2+1)
	spans := make([]segBounds, 0, cap(m.segs))
	var countsBuf [24]nameCount
	counts := countsBuf[:0]
	nextCR, nextLF := -2, -2
	pos, line, phys := 0, 0, 0
	for pos < len(t) {
		// Find the end of this segment: the nearer of the next CR and LF, each
		// searched for with IndexByte and reused until passed (linear overall).
		if nextCR != -1 && nextCR < pos {
			if i := strings.IndexByte(t[pos:], '\r'); i >= 0 {
				nextCR = pos + i
			} else {
				nextCR = -1
			}
		}
		if nextLF != -1 && nextLF < pos {
			if i := strings.IndexByte(t[pos:], '\n'); i >= 0 {
				nextLF = pos + i
			} else {
				nextLF = -1
			}
		}
		end := len(t)
		if nextCR >= 0 {
			end = nextCR
		}
		if nextLF >= 0 && nextLF < end {
			end = nextLF
		}
		segText := t[pos:end]
		segOff := pos
		pos = end + 1
		if end < len(t) && t[end] == '\r' && pos < len(t) && t[pos] == '\n' {
			pos++
		}
		if isBlank(segText) {
			continue
		}
		phys++
		isSeg := len(segText) >= 3 && validSegID(segText[0], segText[1], segText[2]) && (len(segText) == 3 || segText[3] == fs)
		if !isSeg {
			if strict || len(m.segs) == 0 {
				return &ParseError{Err: ErrBadSegmentID, Line: phys, Offset: start + segOff,
					Detail: fmt.Sprintf("line starts with %q (a segment starts with a 3-character ID of A-Z/0-9 followed by %q)", preview([]byte(segText)), fs)}
			}
			// Lenient: a line that does not start a segment continues the previous
			// one; the sender wrapped a long field, or put a line break in text.
			last := &m.segs[len(m.segs)-1]
			oldLen := len(last.text)
			last.text = t[last.off:end]
			if err := m.scanFields(last.text, oldLen, last.name, phys, start+last.off, spans[len(spans)-1].from); err != nil {
				return err
			}
			spans[len(spans)-1].to = len(m.bounds)
			continue
		}
		line++
		name := segText[:3]
		if line > 1 {
			switch name {
			case "MSH":
				return &ParseError{Err: ErrMultipleMessages, Segment: name, Line: phys, Offset: start + segOff,
					Detail: "split the input with SplitMessages"}
			case "FHS", "BHS", "BTS", "FTS":
				return &ParseError{Err: ErrBatch, Segment: name, Line: phys, Offset: start + segOff,
					Detail: "split the input with SplitMessages"}
			}
		}
		from := len(m.bounds)
		if err := m.scanFields(segText, 3, name, phys, start+segOff, from); err != nil {
			return err
		}
		occ := 0
		for k := range counts {
			if counts[k].name == name {
				counts[k].n++
				occ = counts[k].n
				break
			}
		}
		if occ == 0 {
			counts = append(counts, nameCount{name, 1})
			occ = 1
		}
		m.segs = append(m.segs, Segment{msg: m, name: name, text: segText, off: segOff, index: len(m.segs), occurrence: occ})
		spans = append(spans, segBounds{from, len(m.bounds)})
	}
	for i := range m.segs {
		m.segs[i].bounds = m.bounds[spans[i].from:spans[i].to:spans[i].to]
	}
	return nil
}

// scanFields appends to m.bounds the offsets of the field separators in
// segText[from:], and rejects a field that holds " XYZ" where XYZ is a segment
// ID (segments joined by spaces). first is the segment's first index in m.bounds.
func (m *Message) scanFields(segText string, from int, name string, line, off, first int) error {
	fs := m.delims.Field
	for i := from; i < len(segText); {
		j := strings.IndexByte(segText[i:], fs)
		if j < 0 {
			break
		}
		p := i + j
		m.bounds = append(m.bounds, int32(p))
		// "| OBX|": a space then a segment ID as a whole field.
		if p+5 < len(segText) && segText[p+1] == ' ' && segText[p+5] == fs &&
			validSegID(segText[p+2], segText[p+3], segText[p+4]) && knownSegment(segText[p+2:p+5]) {
			fieldNo := len(m.bounds) - first
			if name == "MSH" {
				fieldNo++
			}
			return &ParseError{Err: ErrJoinedSegments, Segment: name, Line: line, Offset: off + p + 1, Field: fieldNo,
				Detail: fmt.Sprintf("field %d is %q, the start of a %s segment", fieldNo, segText[p+1:p+5], segText[p+2:p+5])}
		}
		i = p + 1
	}
	return nil
}

func isBlank(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != ' ' && s[i] != '\t' {
			return false
		}
	}
	return true
}
