package forwarder

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/korean"
	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/encoding/traditionalchinese"

	"github.com/resultgate/resultgate/hl7"
	"github.com/resultgate/resultgate/router/bus"
)

// DefaultReleaseSegment is the Z-segment that carries the release
// instructions HL7 has no standard place for (docs/FORWARDER.md, "Release
// instructions").
const DefaultReleaseSegment = "ZRG"

// The NTE that carries the plain-language note: NTE-2 source of comment "O"
// (HL7 table 0105: other system, i.e. resultgate, neither the filler "L" nor
// the placer "P") and NTE-4 comment type "PI" (HL7 table 0364: patient
// instructions).
const (
	noteSource = "O"
	noteType   = "PI^Patient Instructions^HL70364"
)

// ErrInstructions wraps every reason the release instructions of a feed
// message could not be added to its HL7.
var ErrInstructions = errors.New("forwarder: release instructions")

// Instructions are the release instructions of one feed message, read from
// the portal feed headers (router/bus/wire.go) by InstructionsFromHeader.
type Instructions struct {
	Notify     string    // push or quiet (Resultgate-Notify)
	Note       string    // plain-language note, decoded (Resultgate-Note)
	Path       string    // release path (Resultgate-Release-Path)
	Reason     string    // release reason, decoded (Resultgate-Release-Reason)
	Actor      string    // who released it (Resultgate-Release-Actor)
	Role       string    // the actor's role (Resultgate-Release-Role)
	ReleasedAt time.Time // when (Resultgate-Released-At); zero if absent
	HoldID     string    // Resultgate-Hold-Id
	Retracts   string    // on a retraction, the hold ID taken back (Resultgate-Retracts)
}

// empty reports whether in carries nothing to add.
func (in Instructions) empty() bool {
	return in == Instructions{}
}

// InstructionsFromHeader reads the release instructions from the headers of a
// portal.hl7 message, percent-decoding the note and the reason as the gate
// encodes them.
func InstructionsFromHeader(h nats.Header) (Instructions, error) {
	in := Instructions{
		Notify: h.Get(bus.HeaderNotify), Path: h.Get(bus.HeaderReleasePath),
		Actor: h.Get(bus.HeaderReleaseActor), Role: h.Get(bus.HeaderReleaseRole),
		HoldID: h.Get(bus.HeaderHoldID), Retracts: h.Get(bus.HeaderRetracts),
	}
	var err error
	if in.Note, err = url.PathUnescape(h.Get(bus.HeaderNote)); err != nil {
		// The decoding error quotes part of the note: leave it out.
		return in, fmt.Errorf("%w: header %s is not percent-encoded", ErrInstructions, bus.HeaderNote)
	}
	if in.Reason, err = url.PathUnescape(h.Get(bus.HeaderReleaseReason)); err != nil {
		return in, fmt.Errorf("%w: header %s is not percent-encoded", ErrInstructions, bus.HeaderReleaseReason)
	}
	if v := h.Get(bus.HeaderReleasedAt); v != "" {
		if in.ReleasedAt, err = time.Parse(time.RFC3339Nano, v); err != nil {
			return in, fmt.Errorf("%w: header %s: %w", ErrInstructions, bus.HeaderReleasedAt, err)
		}
	}
	return in, nil
}

// AddInstructions returns raw (one HL7 message) with the release instructions
// added as new segments; every byte of raw is kept, in place:
//
//   - when in.Note is not empty, an NTE after each OBR and the NTEs that
//     follow it: NTE-1 the next set ID of that group, NTE-2 "O", NTE-3 the
//     note (FT: line breaks as \.br\), NTE-4 "PI^Patient Instructions^HL70364".
//     A group that already has an NTE with the same text (the revision note
//     of a retraction the pipeline synthesised, or a message that went
//     through AddInstructions before) gets none. A message without an OBR has
//     the NTE just before the Z-segment;
//   - the Z-segment seg as the last segment:
//     seg|notify|path|actor|role|released-at|hold ID|retracts|reason, unless a
//     byte-identical one is already there.
//
// Text is escaped with the message's own delimiters and written in the
// character set of MSH-18 (UTF-8 when MSH-18 is empty and the message reads as
// UTF-8 or ASCII); replaced reports how many characters that set cannot
// represent and were written as "?" (or, where the message uses "?" as a
// delimiter, another placeholder). New segments end with CR.
func AddInstructions(raw []byte, in Instructions, seg string) (out []byte, replaced int, err error) {
	if in.empty() {
		return raw, 0, nil
	}
	m, err := hl7.Parse(raw)
	if err != nil {
		// The parser's detail may quote content: name only where and what.
		var pe *hl7.ParseError
		if errors.As(err, &pe) {
			return nil, 0, fmt.Errorf("%w: the message does not parse (segment %q, line %d): %w", ErrInstructions, pe.Segment, pe.Line, pe.Err)
		}
		return nil, 0, fmt.Errorf("%w: the message does not parse", ErrInstructions)
	}
	w := newTextWriter(m)
	lines := splitLines(raw, m.Delimiters().Field)
	if len(lines) == 0 || lines[0].name != "MSH" {
		return nil, 0, fmt.Errorf("%w: the message does not start with MSH", ErrInstructions)
	}
	mshLine := raw[lines[0].start:lines[0].end]

	var note []byte
	if in.Note != "" {
		note = w.text(in.Note, true)
	}
	zrg := w.zSegment(seg, in)

	out = make([]byte, 0, len(raw)+len(zrg)+4*(len(note)+48))
	prev := 0 // raw[:prev] is copied
	// insert copies raw up to at (adding a CR if the line before has no
	// terminator) and appends s.
	insert := func(at int, s []byte) {
		out = append(out, raw[prev:at]...)
		if at > 0 && raw[at-1] != '\r' && raw[at-1] != '\n' {
			out = append(out, '\r')
		}
		out = append(out, s...)
		prev = at
	}
	sawOBR, haveZ, zAt := false, false, len(raw)
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if l.name == seg && bytes.Equal(raw[l.start:l.end], zrg[:len(zrg)-1]) {
			haveZ, zAt = true, l.start
		}
		if l.name != "OBR" {
			continue
		}
		sawOBR = true
		if note == nil {
			continue
		}
		// The group: OBR and the NTEs right after it.
		end, setID, dup := l.next, 1, false
		for i+1 < len(lines) && lines[i+1].name == "NTE" {
			i++
			n := lines[i]
			end = n.next
			setID++
			if sameNote(mshLine, raw[n.start:n.end], in.Note, note, m.Delimiters().Field) {
				dup = true
			}
		}
		if !dup {
			insert(end, w.nte(setID, note))
		}
	}
	if note != nil && !sawOBR {
		noted := false
		for _, l := range lines {
			if l.name == "NTE" && sameNote(mshLine, raw[l.start:l.end], in.Note, note, m.Delimiters().Field) {
				noted = true
			}
		}
		if !noted {
			insert(zAt, w.nte(1, note))
		}
	}
	if !haveZ {
		insert(len(raw), zrg)
	}
	out = append(out, raw[prev:]...)
	return out, w.replaced, nil
}

// line is one segment of a raw message: raw[start:end] without its
// terminator, continuation lines included; next is where the following
// segment (or the end) starts.
type line struct {
	name             string
	start, end, next int
}

var utf8BOM = []byte("\xef\xbb\xbf")

// splitLines splits raw into segments as hl7.Parse reads them: CR, LF or CRLF
// end a line, blank lines are skipped, and a line that does not start with a
// segment ID (three upper-case letters or digits, then the field separator or
// the end) continues the segment before it.
func splitLines(raw []byte, fs byte) []line {
	var ls []line
	for i := 0; i < len(raw); {
		j := i
		for j < len(raw) && raw[j] != '\r' && raw[j] != '\n' {
			j++
		}
		k := j
		if k < len(raw) && raw[k] == '\r' {
			k++
		}
		if k < len(raw) && raw[k] == '\n' {
			k++
		}
		text := raw[i:j]
		if len(ls) == 0 {
			text = bytes.TrimPrefix(text, utf8BOM) // hl7.Parse reads past a BOM
		}
		if !hl7.IsBlankLine(text) {
			if hl7.StartsSegment(text, fs) || len(ls) == 0 {
				name := ""
				if len(text) >= 3 {
					name = string(text[:3])
				}
				ls = append(ls, line{name: name, start: i, end: j, next: k})
			} else {
				ls[len(ls)-1].end, ls[len(ls)-1].next = j, k
			}
		} else if len(ls) > 0 {
			ls[len(ls)-1].next = k
		}
		i = k
	}
	return ls
}

// sameNote reports whether the NTE nte carries note as its comment: as
// written (encoded, the bytes AddInstructions writes, also when the
// character set or a missing escape character made them lossy) or as read
// (parsed with the message's MSH, for its delimiters and character set).
func sameNote(msh, nte []byte, note string, encoded []byte, fs byte) bool {
	if parts := bytes.SplitN(nte, []byte{fs}, 5); len(parts) > 3 && bytes.Equal(parts[3], encoded) {
		return true
	}
	m, err := hl7.Parse(append(append(append([]byte(nil), msh...), '\r'), nte...))
	if err != nil {
		return false
	}
	s := m.First("NTE")
	if s == nil {
		return false
	}
	return strings.Join(s.Field(3).Values(), "\n") == normalizeBreaks(note)
}

// normalizeBreaks turns CRLF and CR into LF, as the parser returns \.br\.
func normalizeBreaks(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")
}

// textWriter escapes and encodes text for one message.
type textWriter struct {
	d        hl7.Delimiters
	enc      *encoding.Encoder // nil: UTF-8
	ascii    bool              // only 7-bit characters fit
	replaced int
}

// encoders maps the character sets hl7.Message.Charset names to encoders.
var encoders = map[string]encoding.Encoding{
	"8859/1": charmap.ISO8859_1, "8859/2": charmap.ISO8859_2, "8859/3": charmap.ISO8859_3,
	"8859/4": charmap.ISO8859_4, "8859/5": charmap.ISO8859_5, "8859/6": charmap.ISO8859_6,
	"8859/7": charmap.ISO8859_7, "8859/8": charmap.ISO8859_8, "8859/9": charmap.ISO8859_9,
	"8859/10": charmap.ISO8859_10, "8859/13": charmap.ISO8859_13, "8859/14": charmap.ISO8859_14,
	"8859/15": charmap.ISO8859_15, "8859/16": charmap.ISO8859_16, "WINDOWS-1252": charmap.Windows1252,
	"GB 18030-2000": simplifiedchinese.GB18030, "KS X 1001": korean.EUCKR, "BIG-5": traditionalchinese.Big5,
}

func newTextWriter(m *hl7.Message) *textWriter {
	w := &textWriter{d: m.Delimiters()}
	declared := ""
	if cs := m.MSH().CharacterSets; len(cs) > 0 {
		declared = strings.TrimSpace(cs[0])
	}
	switch cs := m.Charset(); {
	case cs == hl7.CharsetUTF8:
	case cs == hl7.CharsetASCII && declared == "":
		// No MSH-18 and 7-bit bytes: the reading hl7.Parse (and most
		// engines) give a message without MSH-18 is UTF-8.
	case encoders[cs] != nil:
		w.enc = encoders[cs].NewEncoder()
	default:
		// Declared ASCII, or a set hl7 does not know over 7-bit bytes.
		w.ascii = true
	}
	return w
}

// text escapes s for a field of type ST (ft false) or FT (ft true: line
// breaks become \.br\) and encodes it.
func (w *textWriter) text(s string, ft bool) []byte {
	d := w.d
	var b []byte
	esc := func(code string) {
		if d.Escape == 0 {
			// No escape character (MSH-2): nothing can be escaped.
			b = append(b, ' ')
			return
		}
		if strings.ContainsAny(code, string([]byte{d.Field, d.Component, d.Subcomponent, d.Repetition, d.Truncation})) {
			// The message uses a character of the escape sequence as a
			// delimiter (MSH-2 "0S1" makes S the repetition separator):
			// written, it would split the field. A placeholder instead.
			w.replaced++
			b = append(b, w.placeholder())
			return
		}
		b = append(b, d.Escape)
		b = append(b, code...)
		b = append(b, d.Escape)
	}
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case ft && (c == '\r' || c == '\n'):
			if c == '\r' && i+1 < len(s) && s[i+1] == '\n' {
				i++
			}
			esc(".br")
		case c < 0x20 || c == 0x7F:
			// Controls, MLLP's framing bytes among them, never go out raw.
			esc(fmt.Sprintf("X%02X", c))
		case c == d.Field:
			esc("F")
		case c == d.Component:
			esc("S")
		case c == d.Subcomponent && c != 0:
			esc("T")
		case c == d.Repetition && c != 0:
			esc("R")
		case c == d.Escape:
			esc("E")
		case c == d.Truncation && c != 0:
			esc("P")
		case c < utf8.RuneSelf:
			b = append(b, c)
		default:
			r, n := utf8.DecodeRuneInString(s[i:])
			b = w.appendRune(b, s[i:i+n], r)
			i += n
			continue
		}
		i++
	}
	return b
}

// appendRune appends the non-ASCII character r (spelt s in UTF-8) in the
// message's character set, or a placeholder (placeholder) when the set
// cannot represent it.
func (w *textWriter) appendRune(b []byte, s string, r rune) []byte {
	switch {
	case r == utf8.RuneError && len(s) == 1:
	case w.ascii:
	case w.enc == nil:
		return append(b, s...)
	default:
		if e, err := w.enc.String(s); err == nil {
			return append(b, e...)
		}
	}
	w.replaced++
	return append(b, w.placeholder())
}

// placeholder is the character written for one the message cannot carry:
// "?", unless the message uses it as a delimiter (MSH-1 and MSH-2 may be any
// characters), then the first of " _.-*" that it does not use. A message has
// at most six delimiters, so one of these seven is always free.
func (w *textWriter) placeholder() byte {
	d := w.d
	for _, c := range []byte("? _.-*") {
		if c != d.Field && c != d.Component && c != d.Subcomponent && c != d.Repetition && c != d.Escape && c != d.Truncation {
			return c
		}
	}
	return 'X'
}

// nte returns one NTE segment carrying the escaped note, with its CR.
func (w *textWriter) nte(setID int, note []byte) []byte {
	f := w.d.Field
	b := fmt.Appendf(nil, "NTE%c%d%c%s%c", f, setID, f, noteSource, f)
	b = append(b, note...)
	b = append(b, f)
	b = append(b, w.typeCode()...)
	return append(b, '\r')
}

// typeCode is NTE-4 with the message's component separator.
func (w *textWriter) typeCode() string {
	if w.d.Component == '^' {
		return noteType
	}
	return strings.ReplaceAll(noteType, "^", string(w.d.Component))
}

// zSegment returns the Z-segment seg carrying in, with its CR.
func (w *textWriter) zSegment(seg string, in Instructions) []byte {
	at := ""
	if !in.ReleasedAt.IsZero() {
		at = hl7.FormatTime(in.ReleasedAt.UTC())
	}
	fields := []string{in.Notify, in.Path, in.Actor, in.Role, at, in.HoldID, in.Retracts, in.Reason}
	b := []byte(seg)
	for _, v := range fields {
		b = append(b, w.d.Field)
		b = append(b, w.text(v, false)...)
	}
	return append(b, '\r')
}
