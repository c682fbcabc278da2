package hl7

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// AckCode is MSA-1 (HL7 table 0008).
type AckCode string

// Acknowledgement codes: original mode (AA, AE, AR) and enhanced mode accept
// acknowledgements (CA, CE, CR).
const (
	AA AckCode = "AA" // original mode: application accept
	AE AckCode = "AE" // original mode: application error
	AR AckCode = "AR" // original mode: application reject
	CA AckCode = "CA" // enhanced mode: commit accept
	CE AckCode = "CE" // enhanced mode: commit error
	CR AckCode = "CR" // enhanced mode: commit reject
)

// Positive reports whether the code accepts the message (AA or CA).
func (c AckCode) Positive() bool { return c == AA || c == CA }

// Enhanced reports whether the code is an enhanced-mode accept acknowledgement.
func (c AckCode) Enhanced() bool { return c == CA || c == CE || c == CR }

// Outcome is how the receiver handled a message, independent of the
// acknowledgement mode.
type Outcome int

// Outcomes.
const (
	Accepted Outcome = iota // stored / processed
	Errored                 // could not be stored or processed now (the sender may retry)
	Rejected                // will never be accepted (unsupported type, malformed)
)

// AckCodeFor returns the code for outcome in enhanced (CA/CE/CR) or original
// (AA/AE/AR) mode.
func AckCodeFor(enhanced bool, o Outcome) AckCode {
	switch o {
	case Accepted:
		if enhanced {
			return CA
		}
		return AA
	case Errored:
		if enhanced {
			return CE
		}
		return AE
	default:
		if enhanced {
			return CR
		}
		return AR
	}
}

// Table 0357 message error condition codes.
const (
	CodeSegmentSequence    = 100 // segment sequence error
	CodeRequiredMissing    = 101 // required field missing
	CodeDataTypeError      = 102 // data type error
	CodeTableValue         = 103 // table value not found
	CodeUnsupportedType    = 200 // unsupported message type
	CodeUnsupportedEvent   = 201 // unsupported event code
	CodeUnsupportedProcID  = 202 // unsupported processing ID
	CodeUnsupportedVersion = 203 // unsupported version ID
	CodeUnknownKey         = 204 // unknown key identifier
	CodeDuplicateKey       = 205 // duplicate key identifier
	CodeRecordLocked       = 206 // application record locked
	CodeInternalError      = 207 // application internal error
)

// codeText is the table 0357 text for each code, used in ERR-3.2.
var codeText = map[int]string{
	0:   "Message accepted",
	100: "Segment sequence error",
	101: "Required field missing",
	102: "Data type error",
	103: "Table value not found",
	200: "Unsupported message type",
	201: "Unsupported event code",
	202: "Unsupported processing id",
	203: "Unsupported version id",
	204: "Unknown key identifier",
	205: "Duplicate key identifier",
	206: "Application record locked",
	207: "Application internal error",
}

// CodeText returns the table 0357 description of code ("" if unknown).
func CodeText(code int) string { return codeText[code] }

// ErrorDetail is one ERR segment: a table 0357 code, a severity (table 0516: E
// error, W warning, I information, F fatal; "" means E), the location (segment ID,
// its 1-based sequence among segments with that ID, field, repetition,
// component, subcomponent; zeros are left out) and a message for a person.
type ErrorDetail struct {
	Code         int
	Severity     string
	Segment      string
	Sequence     int
	Field        int
	Component    int
	Repetition   int
	Subcomponent int
	Message      string
}

// AcceptAckWanted reports whether an accept acknowledgement should be sent under
// MSH-15 (or MSH-16 for application acknowledgements) value mode (HL7 table 0155)
// for a message whose handling succeeded or not: AL always, NE never, ER only on
// failure, SU only on success. An empty or unknown value means original mode or a
// sloppy sender; it answers true, because answering is the safe default (a sender
// waiting for an ACK that never comes will resend).
func AcceptAckWanted(mode string, success bool) bool {
	switch strings.ToUpper(strings.TrimSpace(mode)) {
	case "NE":
		return false
	case "ER":
		return !success
	case "SU":
		return success
	}
	return true
}

// ACKOptions tune BuildACKWith. The zero value is what BuildACK uses.
type ACKOptions struct {
	// Now is the clock for MSH-7 (time.Now when nil).
	Now func() time.Time
	// ControlID is MSH-10 of the ACK; empty means a random 20-character ID.
	ControlID string
	// Text goes in MSA-3 (withdrawn in v2.7 but read by many engines); empty means
	// the first error's message for versions before 2.5, nothing otherwise.
	Text string
}

// BuildACK builds an acknowledgement for orig: MSH with the original delimiters,
// sender and receiver swapped, MSH-9 "ACK^<event>^ACK" (the event and structure
// only from versions that have them), the original processing ID and version;
// MSA with code and MSA-2 = the original MSH-10; an ERR per error. Segments are
// joined with CR and the result ends with CR; there is no MLLP framing.
func BuildACK(orig *Message, code AckCode, errs ...ErrorDetail) []byte {
	return BuildACKWith(orig, ACKOptions{}, code, errs...)
}

// BuildACKWith is BuildACK with options.
func BuildACKWith(orig *Message, o ACKOptions, code AckCode, errs ...ErrorDetail) []byte {
	h := ackHeader{d: DefaultDelimiters}
	if orig != nil {
		h = headerFromMessage(orig)
	}
	return buildACK(h, o, code, errs)
}

// BuildACKFromBytes builds an acknowledgement from whatever header a partial or
// garbled message offers (for example the first kilobytes of an oversize MLLP
// frame): it finds "MSH", takes its delimiters when they are valid and each
// header field that is complete (followed by a field separator or segment
// terminator), and falls back to |^~\& delimiters, version 2.5.1, processing ID
// P and an empty MSA-2 for what it cannot read.
func BuildACKFromBytes(prefix []byte, code AckCode, errs ...ErrorDetail) []byte {
	return BuildACKFromBytesWith(prefix, ACKOptions{}, code, errs...)
}

// BuildACKFromBytesWith is BuildACKFromBytes with options.
func BuildACKFromBytesWith(prefix []byte, o ACKOptions, code AckCode, errs ...ErrorDetail) []byte {
	return buildACK(headerFromBytes(prefix), o, code, errs)
}

// ackHeader holds the original header fields an ACK echoes, as written (escaped
// in the original delimiters), indexed by MSH field number.
type ackHeader struct {
	d      Delimiters
	fields [19]string // 3..18 used
	event  string
}

func headerFromMessage(m *Message) ackHeader {
	h := ackHeader{d: m.delims}
	// Echo the header as the sender wrote it, in the sender's character set, so
	// that the ACK's MSH-18 still describes its bytes.
	// Each field is cut to its bound (see setFields) before it is encoded, so
	// that the cut falls between UTF-8 characters, not inside a multi-byte
	// character of the sender's set.
	parts := strings.Split(m.segs[0].Raw(), string(m.delims.Field))
	for i := range parts {
		parts[i] = TruncateValue(parts[i], ackBound(i+1), m.delims.Escape)
	}
	if m.decoded != nil {
		enc := m.decoded.enc.NewEncoder()
		for i, p := range parts {
			if e, err := enc.String(p); err == nil {
				parts[i] = e
			}
		}
	}
	for n := 3; n <= 18 && n-1 < len(parts); n++ {
		h.setField(n, parts[n-1]) // parts[0] is "MSH", parts[n-1] is MSH-n
	}
	h.setEvent()
	return h
}

// ackBound returns the most bytes of MSH-n an acknowledgement echoes:
// MaxHDValue for the hierarchic designators MSH-3 to MSH-6, MaxHeaderValue
// for any other field (MSH-10 becomes MSA-2, whose ST is 199 long from v2.7).
func ackBound(n int) int {
	if n >= 3 && n <= 6 {
		return MaxHDValue
	}
	return MaxHeaderValue
}

// setField sets MSH-n, cut to ackBound(n). A line break inside a field (a
// wrapped header read leniently) is escaped so that it cannot end the ACK's
// segment.
func (h *ackHeader) setField(n int, v string) {
	if strings.ContainsAny(v, "\r\n") {
		if h.d.Escape != 0 {
			e := string(h.d.Escape)
			v = strings.NewReplacer("\r", e+"X0D"+e, "\n", e+"X0A"+e).Replace(v)
		} else {
			v = strings.NewReplacer("\r", " ", "\n", " ").Replace(v)
		}
	}
	if len(v) == 4 && v[0] == ' ' && validSegID(v[1], v[2], v[3]) {
		// " OBX" as a whole field reads as segments joined by a space once
		// another field follows it in the ACK; drop the space.
		v = v[1:]
	}
	h.fields[n] = TruncateValue(v, ackBound(n), h.d.Escape)
}

// setEvent sets the event code echoed in the ACK's MSH-9 from MSH-9.2.
func (h *ackHeader) setEvent() {
	h.event = nth(nth(h.fields[9], h.d.Repetition, 1), h.d.Component, 2)
}

// headerFromBytes reads the header with PeekMSH; without a terminator the
// last field is left out, since it may be cut short.
func headerFromBytes(b []byte) ackHeader {
	h := ackHeader{d: DefaultDelimiters}
	p, ok := PeekMSH(b)
	if !ok {
		return h
	}
	h.d = p.Delimiters()
	last := p.NumFields()
	if !p.Complete() {
		last--
	}
	last = min(last, 18)
	if last < 3 {
		return h
	}
	// One string for MSH-2 to the last field echoed (not the whole line, which
	// in a garbled frame may be megabytes); the fields are substrings of it.
	_, end, _ := p.FieldSpan(last)
	rest := string(p.b[p.off+4 : end])
	for n := 2; n <= last; n++ {
		v := rest
		if j := strings.IndexByte(rest, h.d.Field); j >= 0 {
			v, rest = rest[:j], rest[j+1:]
		}
		if n >= 3 {
			h.setField(n, v)
		}
	}
	h.setEvent()
	return h
}

func buildACK(h ackHeader, o ACKOptions, code AckCode, errs []ErrorDetail) []byte {
	d := h.d
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	version := h.fields[12]
	verID := nth(nth(version, d.Repetition, 1), d.Component, 1)
	if strings.TrimSpace(verID) == "" {
		version, verID = "2.5.1", "2.5.1"
	}
	procID := h.fields[11]
	if strings.TrimSpace(procID) == "" {
		procID = "P"
	}
	ctrl := o.ControlID
	if ctrl == "" {
		ctrl = newControlID()
	}
	utf8ok := true
	if cs := nth(h.fields[18], d.Repetition, 1); cs != "" {
		if info, ok := lookupCharset(cs); !ok || info.name != CharsetUTF8 {
			utf8ok = false
		}
	}
	// Texts (MSA-3, ERR-8) are cut to MaxHeaderValue before they are escaped:
	// an error message may quote what the sender wrote.
	esc := func(s string) string { return escapeForACK(TruncateValue(s, MaxHeaderValue, 0), d, utf8ok) }

	var b bytes.Buffer
	fs := string(d.Field)
	// MSH
	b.WriteString("MSH")
	b.WriteString(fs)
	b.WriteString(d.EncodingCharacters())
	for _, v := range []string{h.fields[5], h.fields[6], h.fields[3], h.fields[4], FormatTime(now()), ""} {
		b.WriteString(fs)
		b.WriteString(v)
	}
	b.WriteString(fs)
	b.WriteString(ackType(verID, h.event, d))
	for _, v := range []string{esc(ctrl), procID, version} {
		b.WriteString(fs)
		b.WriteString(v)
	}
	if cs := h.fields[18]; cs != "" && (IsSupportedCharset(nth(cs, d.Repetition, 1)) || isASCII([]byte(cs))) {
		b.WriteString(strings.Repeat(fs, 6))
		b.WriteString(cs)
	}
	b.WriteByte('\r')
	// MSA
	old := oldERR(verID)
	text := o.Text
	if text == "" && old && len(errs) > 0 {
		text = errs[0].Message
		if text == "" {
			text = CodeText(errs[0].Code)
		}
	}
	b.WriteString("MSA")
	b.WriteString(fs)
	b.WriteString(string(code))
	b.WriteString(fs)
	b.WriteString(h.fields[10])
	if text != "" {
		b.WriteString(fs)
		b.WriteString(esc(text))
	}
	b.WriteByte('\r')
	// ERR
	for _, e := range errs {
		b.WriteString("ERR")
		b.WriteString(fs)
		if old {
			writeELD(&b, e, d)
		} else {
			writeERR(&b, e, d, esc)
		}
		b.WriteByte('\r')
	}
	return b.Bytes()
}

// oldERR reports whether version uses the v2.1–v2.4 ERR (ERR-1 ELD only).
func oldERR(ver string) bool {
	major, minor, ok := versionNumbers(ver)
	return ok && major == 2 && minor < 5
}

// versionNumbers splits "2.5.1" into 2 and 5.
func versionNumbers(ver string) (major, minor int, ok bool) {
	parts := strings.SplitN(strings.TrimSpace(ver), ".", 3)
	if len(parts) < 2 {
		return 0, 0, false
	}
	a, err1 := strconv.Atoi(parts[0])
	b, err2 := strconv.Atoi(parts[1])
	return a, b, err1 == nil && err2 == nil
}

// ackType returns MSH-9 for the ACK: "ACK" for v2.1–2.2, "ACK^event" for
// v2.3–2.3.1, "ACK^event^ACK" from v2.4.
func ackType(ver, event string, d Delimiters) string {
	major, minor, ok := versionNumbers(ver)
	cs := string(d.Component)
	switch {
	case ok && major == 2 && minor < 3:
		return "ACK"
	case ok && major == 2 && minor < 4:
		if event == "" {
			return "ACK"
		}
		return "ACK" + cs + event
	default:
		return "ACK" + cs + event + cs + "ACK"
	}
}

// writeELD writes the v2.1–v2.4 ERR-1: segment^sequence^field^code&text&HL70357.
func writeELD(b *bytes.Buffer, e ErrorDetail, d Delimiters) {
	cs := string(d.Component)
	b.WriteString(e.Segment)
	b.WriteString(cs)
	if e.Sequence > 0 {
		b.WriteString(strconv.Itoa(e.Sequence))
	}
	b.WriteString(cs)
	if e.Field > 0 {
		b.WriteString(strconv.Itoa(e.Field))
	}
	b.WriteString(cs)
	code := e.Code
	if code == 0 {
		code = CodeInternalError
	}
	b.WriteString(strconv.Itoa(code))
	if d.Subcomponent != 0 {
		b.WriteByte(d.Subcomponent)
		b.WriteString(CodeText(code))
		b.WriteByte(d.Subcomponent)
		b.WriteString("HL70357")
	}
}

// writeERR writes the v2.5+ ERR: ERR-2 location, ERR-3 code, ERR-4 severity,
// ERR-8 user message (ERR-1 left empty: it is withdrawn).
func writeERR(b *bytes.Buffer, e ErrorDetail, d Delimiters, esc func(string) string) {
	fs, cs := string(d.Field), string(d.Component)
	if e.Segment != "" {
		b.WriteString(fs)
		b.WriteString(e.Segment)
		b.WriteString(cs)
		seq := e.Sequence
		if seq == 0 {
			seq = 1
		}
		b.WriteString(strconv.Itoa(seq))
		if e.Field > 0 {
			rep := e.Repetition
			if rep == 0 {
				rep = 1
			}
			b.WriteString(cs + strconv.Itoa(e.Field) + cs + strconv.Itoa(rep))
			if e.Component > 0 {
				b.WriteString(cs + strconv.Itoa(e.Component))
				if e.Subcomponent > 0 {
					b.WriteString(cs + strconv.Itoa(e.Subcomponent))
				}
			}
		}
	} else {
		b.WriteString(fs)
	}
	code := e.Code
	if code == 0 {
		code = CodeInternalError
	}
	b.WriteString(fs)
	b.WriteString(strconv.Itoa(code) + cs + CodeText(code) + cs + "HL70357")
	sev := strings.ToUpper(e.Severity)
	if sev == "" {
		sev = "E"
	}
	b.WriteString(fs)
	b.WriteString(esc(sev))
	if e.Message != "" {
		b.WriteString(fs + fs + fs + fs)
		b.WriteString(esc(e.Message))
	}
}

// escapeForACK escapes text for the ACK; without UTF-8 it replaces non-ASCII
// characters with '?' so the ACK stays valid in its declared character set.
func escapeForACK(s string, d Delimiters, utf8ok bool) string {
	if !utf8ok || !utf8.ValidString(s) {
		var b strings.Builder
		for _, r := range s {
			if r >= 0x80 || r == utf8.RuneError {
				r = '?'
			}
			b.WriteRune(r)
		}
		s = b.String()
	}
	return Escape(s, d)
}

// newControlID returns a random 20-character control ID (MSH-10 is at most 20
// characters before v2.7).
func newControlID() string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return strings.ToUpper(hex.EncodeToString(b[:]))
}
