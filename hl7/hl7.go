// Package hl7 parses, inspects and builds HL7 version 2 messages (v2.1 to v2.9),
// following HL7 v2.x chapter 2 ("Control"): the field separator and encoding
// characters come from MSH-1 and MSH-2, segments end at a carriage return (and,
// leniently, at LF or CRLF), fields split into repetitions, components and
// subcomponents, and escape sequences (chapter 2, "Use of escape sequences in text
// fields") are decoded on access.
//
// The package does no I/O. Parsing is lazy: Parse copies the input once, records
// where each segment and field starts, and splits repetitions, components and
// subcomponents only when they are asked for, so reading a field allocates nothing
// unless its value contains escape sequences.
//
// A parsed message keeps its original bytes: Encode returns them unchanged, so a
// message that is only read re-encodes byte-for-byte.
//
// Values are returned unescaped. Formatting escapes, which the standard defines
// for displaying FT text, are turned into plain text (\.br\ becomes "\n", \H\
// and \N\ are dropped); UnescapeWith with KeepFormatting keeps them for a
// renderer. See Unescape for the full table.
//
// The parser is lenient where real senders are sloppy and strict where a wrong
// reading would lose or misplace data:
//
//   - lenient: CR, LF or CRLF terminators (mixed), blank lines, a BOM, trailing
//     empty fields, unescaped delimiters or stray escape characters in text
//     (kept literally), a line that does not start a segment (read as the
//     continuation of a wrapped field), an unknown MSH-18 over 7-bit bytes, and
//     bytes that do not fit MSH-18 (decoded with a fallback character set);
//     each such reading is listed by Message.Notes;
//   - strict, always: no MSH, unusable MSH-1/MSH-2 (a repeated or non-printable
//     delimiter), segments run together on one line ("...| OBX|1|..."), more
//     than one message or a batch envelope given to Parse; ParseOptions.Strict
//     makes the lenient readings errors too.
//
// Errors are *ParseError values naming the segment, line, byte offset and
// field, wrapping a sentinel (ErrNoMSH, ErrBadDelimiters, ...) for errors.Is.
//
// Character sets (MSH-18, HL7 table 0211): ASCII, 8859/1 to 8859/10 and 8859/13 to
// 8859/16, Windows-1252, UNICODE UTF-8 and the CJK sets GB 18030, KS X 1001 and BIG-5 are decoded to UTF-8 before the message is split; values are
// always returned as UTF-8. See ParseOptions for the fallback used when the bytes
// do not match the declared set.
//
// Acknowledgements (chapter 2, "Acknowledgment messages"): BuildACK writes one
// for a parsed message and BuildACKFromBytes for whatever header a frame that
// does not parse offers; ReadACK reads one (MSA and ERR) leniently, as
// downstream engines write them. PeekMSH reads a header's delimiters and fields
// from raw bytes without parsing the message, for the paths that cannot or need
// not parse it, so that no other package needs a scanner of its own.
package hl7

import (
	"bytes"
	"fmt"
	"strings"
	"unsafe"
)

// Delimiters are a message's separators and escape character, taken from MSH-1
// (Field) and MSH-2 (Component, Repetition, Escape, Subcomponent and, from v2.7,
// Truncation, in that order). A character MSH-2 leaves out is 0: a message with
// the three encoding characters "^~\" has no subcomponent separator.
type Delimiters struct {
	Field, Component, Repetition, Escape, Subcomponent, Truncation byte
}

// maxMessage bounds the input so that 32-bit offsets always fit.
const maxMessage = 1 << 30

// DefaultDelimiters are the delimiters the standard recommends: |^~\&.
var DefaultDelimiters = Delimiters{Field: '|', Component: '^', Repetition: '~', Escape: '\\', Subcomponent: '&'}

// EncodingCharacters returns MSH-2 as these delimiters spell it.
func (d Delimiters) EncodingCharacters() string {
	var b []byte
	for _, c := range []byte{d.Component, d.Repetition, d.Escape, d.Subcomponent, d.Truncation} {
		if c == 0 {
			break
		}
		b = append(b, c)
	}
	return string(b)
}

// Message is one parsed HL7 v2 message. It is safe for concurrent reads; nothing in
// the package modifies a Message after Parse returns.
type Message struct {
	raw     []byte // the input: a private copy, or the caller's bytes with ParseOptions.NoCopy
	text    string // raw decoded to UTF-8 (shares raw's memory when no decoding was needed)
	start   int    // offset in raw of "MSH" (after a BOM or leading blank lines)
	delims  Delimiters
	dx      uint64       // delims packed as in Field.x, see packDelims
	charset string       // the character set used to decode, as named in table 0211
	decoded *charsetInfo // set when text was transcoded from raw (raw is not UTF-8)
	notes   []Note       // lenient readings, see Notes
	segs    []Segment
	f16     []uint16 // the index when every segment is shorter than compactSegment, else nil; see entry
	fields  []uint32 // the index otherwise
	fsh     uint     // an index entry is offset<<fsh | flags&fmask (f16: always 4 and fAll)
	fmask   uint32
	dxr     uint64 // dx with the flags every field is assumed to hold (fAll when fmask is 0)
}

// Segment is one segment of a parsed Message.
type Segment struct {
	msg        *Message
	off        int32 // the segment's text (without terminator) starts at msg.text[off]
	nf         int32 // fields Field reads on its fast path: all but MSH's in a 16-bit index, else 0
	bFrom, bTo int32 // its field separators are index entries bFrom to bTo-1; entry bTo marks its end
	index      int32
	occurrence int32
}

// Note records one lenient reading: something the sender got wrong that Parse
// read past instead of failing (ParseOptions.Strict would have failed). Intake
// can count them or report them to the sender without rejecting the message.
type Note struct {
	Line    int    // 1-based line (blank lines not counted), 0 for the whole message
	Segment string // segment ID where it applies, or ""
	Text    string
}

// String formats the note as "line 3 (OBX): a line that does not start a segment ...".
func (n Note) String() string {
	switch {
	case n.Line > 0 && n.Segment != "":
		return fmt.Sprintf("line %d (%s): %s", n.Line, n.Segment, n.Text)
	case n.Segment != "":
		return n.Segment + ": " + n.Text
	}
	return n.Text
}

// Notes returns the lenient readings Parse made, in order; nil for a message
// that needed none. The slice is shared: do not modify it.
func (m *Message) Notes() []Note { return m.notes }

func (m *Message) note(line int, seg, text string) {
	m.notes = append(m.notes, Note{Line: line, Segment: seg, Text: text})
}

// Delimiters returns the message's delimiters.
func (m *Message) Delimiters() Delimiters { return m.delims }

// Charset returns the character set the message was decoded from, as a table 0211
// name ("ASCII", "8859/1", "UNICODE UTF-8", ...).
func (m *Message) Charset() string { return m.charset }

// Segments returns the message's segments in order, as a new slice of pointers
// into the message.
func (m *Message) Segments() []*Segment {
	out := make([]*Segment, len(m.segs))
	for i := range m.segs {
		out[i] = &m.segs[i]
	}
	return out
}

// NumSegments returns the number of segments.
func (m *Message) NumSegments() int { return len(m.segs) }

// Segment returns the i-th segment (0-based), or nil when out of range.
func (m *Message) Segment(i int) *Segment {
	if i < 0 || i >= len(m.segs) {
		return nil
	}
	return &m.segs[i]
}

// First returns the first segment named name, or nil if there is none.
func (m *Message) First(name string) *Segment {
	for i := range m.segs {
		if m.segs[i].Name() == name {
			return &m.segs[i]
		}
	}
	return nil
}

// Nth returns the n-th (1-based) segment named name, or nil.
func (m *Message) Nth(name string, n int) *Segment {
	for i := range m.segs {
		if m.segs[i].Name() == name && int(m.segs[i].occurrence) == n {
			return &m.segs[i]
		}
	}
	return nil
}

// All returns every segment named name, in order.
func (m *Message) All(name string) []*Segment {
	var out []*Segment
	for i := range m.segs {
		if m.segs[i].Name() == name {
			out = append(out, &m.segs[i])
		}
	}
	return out
}

// Encode returns the message's bytes: for a parsed message, exactly the bytes given
// to Parse (including a byte-order mark and the original segment terminators). The
// returned slice is a fresh copy.
func (m *Message) Encode() []byte { return bytes.Clone(m.raw) }

// Raw returns the message's original bytes without copying. Callers must not
// modify the returned slice.
func (m *Message) Raw() []byte { return m.raw }

// Text returns the whole message decoded to UTF-8, terminators unchanged.
func (m *Message) Text() string { return m.text }

// ControlID returns MSH-10, the message control ID, unescaped.
func (m *Message) ControlID() string { return m.segs[0].Field(10).Value() }

// Version returns MSH-12.1, the version ID ("2.5.1").
func (m *Message) Version() string { return m.segs[0].Field(12).Component(1) }

// Type returns MSH-9 components 1 to 3: message code, trigger event and message
// structure ("ORU", "R01", "ORU_R01").
func (m *Message) Type() (code, event, structure string) {
	f := m.segs[0].Field(9)
	return f.Component(1), f.Component(2), f.Component(3)
}

// Name returns the segment ID ("MSH", "OBX", "ZNT").
func (s *Segment) Name() string { return s.msg.text[s.off : s.off+3] }

// Occurrence returns the 1-based position of this segment among the message's
// segments with the same name.
func (s *Segment) Occurrence() int { return int(s.occurrence) }

// Index returns the 0-based position of this segment in its message.
func (s *Segment) Index() int { return int(s.index) }

// Raw returns the segment's text (decoded to UTF-8) without its terminator.
func (s *Segment) Raw() string {
	end, _ := s.msg.entry(s.off, int(s.bTo))
	return s.msg.text[s.off:end]
}

// Offset returns the byte offset of the segment in Message.Text.
func (s *Segment) Offset() int { return int(s.off) }

// NumFields returns the number of the segment's last field present in the message,
// in standard numbering: for "PID|1||123" it is 3, for MSH it counts MSH-1.
func (s *Segment) NumFields() int {
	n := int(s.bTo - s.bFrom)
	if s.index == 0 { // MSH: the first separator is MSH-1 itself
		return n + 1
	}
	return n
}

// The index (Message.f16 or Message.fields) holds, for each segment, one entry
// per field separator and then one for the segment's end, so that field i
// always ends where entry i+1 starts. An entry is the offset from the
// segment's start shifted left by Message.fsh, or-ed with what the field
// after the separator may contain (fRep, fComp, fSub, fEsc bits, set while
// splitting), so that reading a simple field needs no further scan.
//
// A message whose segments are all shorter than compactSegment (4 KiB), which
// is nearly every message, gets 16-bit entries: 12 bits of offset and the 4
// flags, two bytes a separator, a third of the bytes of the text. Any other
// message gets 32-bit entries: offsets need 30 bits (maxMessage) and the flags
// 4, so a text shorter than wideIndex (256 MiB) stores both (fsh 4), a longer
// one stores offsets alone (fsh 0) and its fields are read as possibly holding
// anything (fAll), which costs speed, never correctness.
var wideIndex = 1 << 28

// entry returns the offset in Message.text and the content flags of index
// entry k, which belongs to the segment at off.
func (m *Message) entry(off int32, k int) (int, uint8) {
	if m.f16 != nil {
		e := m.f16[k]
		return int(off) + int(e>>4), uint8(e & 0xF)
	}
	e := m.fields[k]
	return int(off) + int(e>>m.fsh), uint8(e&m.fmask) | uint8(m.dxr)
}

// Field content flags: "may contain" bits. fAll means unknown.
const (
	fRep uint8 = 1 << iota
	fComp
	fSub
	fEsc
	fLit // MSH-1, MSH-2, segment ID: never split or unescaped
	fAll = fRep | fComp | fSub | fEsc
)

// Field returns field n in standard numbering (for MSH, field 1 is the field
// separator and field 2 the encoding characters). A field beyond the end of the
// segment is empty. Field(0) returns the segment ID.
func (s *Segment) Field(n int) Field {
	// The common case: field n of a segment other than MSH, in a 16-bit
	// index, runs from separator n to the next separator or the segment's end.
	if uint(n-1) < uint(s.nf) {
		m := s.msg
		i := int(s.bFrom) + n
		a, b := m.f16[i-1], m.f16[i]
		o := int(s.off)
		return Field{s: m.text[o+int(a>>4)+1 : o+int(b>>4)], x: m.dx | uint64(a&0xF)}
	}
	return s.fieldSlow(n)
}

func (s *Segment) fieldSlow(n int) Field {
	m := s.msg
	if n == 0 {
		return Field{s: s.Name(), x: m.dx | uint64(fLit)}
	}
	if n < 0 {
		return Field{x: m.dx}
	}
	idx := n          // field n follows separator n (1-based)
	if s.index == 0 { // MSH, always first and only there
		switch n {
		case 1:
			return Field{s: m.text[s.off+3 : s.off+4], x: m.dx | uint64(fLit)}
		case 2:
			t, _ := s.fieldText(1)
			return Field{s: t, x: m.dx | uint64(fLit)}
		}
		idx = n - 1
	}
	t, fl := s.fieldText(idx)
	return Field{s: t, x: m.dx | uint64(fl)}
}

// fieldText returns the text after separator i (1-based) up to the next one (or
// the segment's end), and its content flags.
func (s *Segment) fieldText(i int) (string, uint8) {
	if i < 1 || i > int(s.bTo-s.bFrom) {
		return "", 0
	}
	m := s.msg
	start, fl := m.entry(s.off, int(s.bFrom)+i-1)
	end, _ := m.entry(s.off, int(s.bFrom)+i)
	return m.text[start+1 : end], fl
}

// Fields returns fields 1 to NumFields.
func (s *Segment) Fields() []Field {
	n := s.NumFields()
	out := make([]Field, n)
	for i := range out {
		out[i] = s.Field(i + 1)
	}
	return out
}

// Field is one field of a segment (all its repetitions) or, from Rep, one
// repetition. It is a small value that refers to the message's text; reading it
// allocates only when escape sequences have to be decoded.
type Field struct {
	s string
	// x packs what s may contain (bits 0-7: fRep, fComp, fSub, fEsc, and fLit
	// for MSH-1, MSH-2 and segment IDs, which are never split or unescaped) and
	// the delimiters (bits 8-55, see packDelims). Two words and a string fit in
	// registers, so Segment.Field inlines and returns without spilling.
	x uint64
}

// packDelims packs d into bits 8-55 of a Field's x.
func packDelims(d Delimiters) uint64 {
	return uint64(d.Field)<<8 | uint64(d.Component)<<16 | uint64(d.Repetition)<<24 |
		uint64(d.Escape)<<32 | uint64(d.Subcomponent)<<40 | uint64(d.Truncation)<<48
}

func (f Field) flags() uint8  { return uint8(f.x) }
func (f Field) literal() bool { return f.x&uint64(fLit) != 0 }
func (f Field) comp() byte    { return byte(f.x >> 16) }
func (f Field) rep() byte     { return byte(f.x >> 24) }
func (f Field) sub() byte     { return byte(f.x >> 40) }
func (f Field) delims() Delimiters {
	return Delimiters{Field: byte(f.x >> 8), Component: byte(f.x >> 16), Repetition: byte(f.x >> 24),
		Escape: byte(f.x >> 32), Subcomponent: byte(f.x >> 40), Truncation: byte(f.x >> 48)}
}

// NewField returns a Field for raw text written with delimiters d, for reading
// values that do not come from a parsed segment.
func NewField(raw string, d Delimiters) Field {
	return Field{s: raw, x: packDelims(d) | uint64(flagsOf(raw, d))}
}

// flagsOf computes the content flags of s.
func flagsOf(s string, d Delimiters) uint8 {
	var fl uint8
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == 0:
		case c == d.Repetition:
			fl |= fRep
		case c == d.Component:
			fl |= fComp
		case c == d.Subcomponent:
			fl |= fSub
		case c == d.Escape:
			fl |= fEsc
		}
	}
	return fl
}

// Raw returns the field as it appears in the message (UTF-8), with its
// repetitions, component separators and escape sequences intact.
func (f Field) Raw() string { return f.s }

// IsEmpty reports whether the field is absent or empty.
func (f Field) IsEmpty() bool { return f.s == "" }

// IsNull reports whether the field (or repetition) is the explicit null ""
// (chapter 2: two double quotes tell the receiver to delete the value).
func (f Field) IsNull() bool { return f.s == `""` }

// Reps returns the number of repetitions: 0 for an empty field, otherwise one more
// than the number of repetition separators.
func (f Field) Reps() int {
	if f.flags()&fRep == 0 {
		if f.s == "" {
			return 0
		}
		return 1
	}
	return f.repsSlow()
}

func (f Field) repsSlow() int {
	if f.s == "" {
		return 0
	}
	if f.literal() || f.flags()&fRep == 0 || f.rep() == 0 {
		return 1
	}
	return countByte(f.s, f.rep()) + 1
}

// Rep returns repetition i (1-based) as a Field with a single repetition. A
// repetition beyond the last is empty. Rep scans the field from its start:
// to read every repetition use AllReps, which reads them in one pass.
func (f Field) Rep(i int) Field {
	if f.literal() || f.flags()&fRep == 0 || f.rep() == 0 {
		if i == 1 {
			return f
		}
		return Field{x: f.x&^0xFF | f.x&uint64(fLit)}
	}
	return Field{s: nth(f.s, f.rep(), i), x: f.x &^ uint64(fRep)}
}

// first returns the text of the first repetition.
func (f Field) first() string {
	if f.literal() || f.flags()&fRep == 0 {
		return f.s
	}
	return nth(f.s, f.rep(), 1)
}

// Value returns the first repetition, unescaped, with any component and
// subcomponent separators left in place. It is the natural reading of a simple
// (ST, ID, NM, TX, FT, DTM...) field; for composite types use Component and Sub,
// which never confuse an escaped separator (\S\) with a real one. A null ("")
// reads as the empty string; use IsNull to tell it apart.
func (f Field) Value() string {
	if f.flags()&(fRep|fEsc|fLit) == 0 && f.s != `""` {
		return f.s
	}
	return f.valueSlow()
}

func (f Field) valueSlow() string {
	v := f.first()
	if f.literal() || f.flags()&fEsc == 0 {
		if v == `""` && !f.literal() {
			return ""
		}
		return v
	}
	if v == `""` {
		return ""
	}
	return Unescape(v, f.delims())
}

// AppendValue appends Value() to dst and returns the extended slice; it
// decodes escape sequences straight into dst, so a caller that collects
// values in its own buffer does not pay for a string per escaped value.
func (f Field) AppendValue(dst []byte) []byte {
	if f.flags()&(fRep|fEsc|fLit) == 0 && f.s != `""` {
		return append(dst, f.s...)
	}
	v := f.first()
	if f.literal() || f.flags()&fEsc == 0 {
		if v == `""` && !f.literal() {
			return dst
		}
		return append(dst, v...)
	}
	if v == `""` {
		return dst
	}
	d := f.delims()
	if d.Escape == 0 || indexByte(v, d.Escape) < 0 {
		return append(dst, v...)
	}
	b := byteBuf{b: dst}
	appendUnescape(&b, v, d, UnescapeOptions{})
	return b.b
}

// Values returns Value for every repetition, read in one pass.
func (f Field) Values() []string {
	out := make([]string, 0, f.Reps())
	for _, r := range f.AllReps() {
		out = append(out, r.Value())
	}
	return out
}

// Components returns the number of components in the first repetition (0 if empty).
func (f Field) Components() int {
	if f.flags()&(fRep|fComp) == 0 {
		if f.s == "" {
			return 0
		}
		return 1
	}
	return f.componentsSlow()
}

func (f Field) componentsSlow() int {
	v := f.first()
	if v == "" {
		return 0
	}
	if f.literal() || f.flags()&fComp == 0 || f.comp() == 0 {
		return 1
	}
	return countByte(v, f.comp()) + 1
}

// RawComponent returns component c (1-based) of the first repetition, still escaped.
func (f Field) RawComponent(c int) string {
	if f.literal() || f.flags()&fComp == 0 || f.comp() == 0 {
		if c == 1 {
			return f.first()
		}
		return ""
	}
	return nth(f.first(), f.comp(), c)
}

// Component returns component c (1-based) of the first repetition, unescaped, with
// any subcomponent separators left in place. Component 1 of a field without
// components is the whole value. A null ("") reads as "". Component scans the
// repetition from its start: to read every component use AllComponents.
func (f Field) Component(c int) string {
	if f.flags()&(fRep|fComp|fEsc|fLit) == 0 && c == 1 && f.s != `""` {
		return f.s
	}
	return f.componentSlow(c)
}

func (f Field) componentSlow(c int) string {
	v := f.RawComponent(c)
	if f.literal() {
		return v
	}
	if v == `""` {
		return ""
	}
	if f.flags()&fEsc == 0 {
		return v
	}
	return Unescape(v, f.delims())
}

// Subcomponents returns the number of subcomponents of component c.
func (f Field) Subcomponents(c int) int {
	v := f.RawComponent(c)
	if v == "" {
		return 0
	}
	if f.literal() || f.flags()&fSub == 0 || f.sub() == 0 {
		return 1
	}
	return countByte(v, f.sub()) + 1
}

// Sub returns subcomponent s of component c (both 1-based) of the first
// repetition, unescaped.
func (f Field) Sub(c, s int) string {
	v := f.RawComponent(c)
	if f.literal() {
		if s == 1 {
			return v
		}
		return ""
	}
	if f.flags()&fSub != 0 && f.sub() != 0 {
		v = nth(v, f.sub(), s)
	} else if s != 1 {
		v = ""
	}
	if v == `""` {
		return ""
	}
	if f.flags()&fEsc == 0 {
		return v
	}
	return Unescape(v, f.delims())
}

// nth returns the i-th (1-based) part of s split at sep, or "" when there is none.
// It does not allocate.
func nth(s string, sep byte, i int) string {
	if i < 1 {
		return ""
	}
	if sep == 0 {
		if i == 1 {
			return s
		}
		return ""
	}
	for ; i > 1; i-- {
		j := indexByte(s, sep)
		if j < 0 {
			return ""
		}
		s = s[j+1:]
	}
	if j := indexByte(s, sep); j >= 0 {
		return s[:j]
	}
	return s
}

// indexByte is strings.IndexByte tuned for HL7 fields, which are mostly short:
// a plain loop over the first bytes avoids the call and vector set-up, and long
// values (narratives, base64) still get the vectorised search.
func indexByte(s string, c byte) int {
	n := len(s)
	if n > 32 {
		n = 32
	}
	for i := 0; i < n; i++ {
		if s[i] == c {
			return i
		}
	}
	if len(s) <= 32 {
		return -1
	}
	if j := strings.IndexByte(s[32:], c); j >= 0 {
		return j + 32
	}
	return -1
}

// countByte counts c in s (strings.Count for long strings).
func countByte(s string, c byte) int {
	if len(s) > 64 {
		return strings.Count(s, string(c))
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			n++
		}
	}
	return n
}

// bytesToString returns a string sharing b's memory. b must never be modified
// afterwards; Parse only uses it on its private copy of the input.
func bytesToString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
