package hl7

import (
	"bytes"
	"errors"
	"strings"
	"unicode/utf8"
)

// ACK is an acknowledgement as ReadACK reads it: the MSA segment and every ERR
// segment (HL7 v2.x chapter 2, "Acknowledgment messages").
type ACK struct {
	// Delimiters are the ACK's own, from its MSH; without a usable MSH, the
	// field separator is the character after "MSA" and the others are |^~\&'s.
	Delimiters Delimiters
	// Version is MSH-12.1 of the ACK ("" without an MSH).
	Version string
	// Code is MSA-1, trimmed and upper-cased.
	Code AckCode
	// ControlID is MSA-2, trimmed: the control ID (MSH-10) of the message
	// acknowledged.
	ControlID string
	// Text is MSA-3, the text message (withdrawn in v2.7, still sent by many
	// engines).
	Text string
	// Errors are the ERR segments in order.
	Errors []ACKError
}

// ACKError is one ERR segment of an acknowledgement, read into the fields
// BuildACK writes from an ErrorDetail: the location from ERR-2 (v2.5 on) or
// ERR-1.1 to 1.3 (v2.1 to 2.4), the code from ERR-3.1 or ERR-1.4.1 (0 when it
// is not a number), the severity from ERR-4 (as written: "" when absent) and
// the message from ERR-8. CodeText is the code's text as the receiver wrote it
// (ERR-3.2 or ERR-1.4.2).
type ACKError struct {
	ErrorDetail
	CodeText string
}

// Errors ReadACK returns. The ACK it returns with them holds what it could
// read, so that a caller can report, for example, an unknown MSA-1.
var (
	// ErrNoMSA means the input has no MSA segment: it is no acknowledgement.
	ErrNoMSA = errors.New("no MSA segment")
	// ErrAckCode means MSA-1 is empty or not one of AA, AE, AR, CA, CE, CR.
	ErrAckCode = errors.New("MSA-1 is not an acknowledgement code")
)

// ReadACK reads an acknowledgement: the first MSA segment and every ERR
// segment, each at the start of a line (segments end at CR, LF or CRLF). It is
// lenient, because downstream engines write odd ACKs: it does not require the
// ACK to parse as a message, and without a usable MSH it takes the field
// separator from the character after "MSA". Values are unescaped and, when the
// ACK's MSH-18 names a character set other than UTF-8, decoded from it; bytes
// that are not valid text become U+FFFD.
//
// It fails with ErrNoMSA when there is no MSA segment, and with ErrAckCode
// when MSA-1 is not an acknowledgement code (the returned ACK then carries
// that MSA-1). The returned ACK shares no memory with ack.
func ReadACK(ack []byte) (ACK, error) {
	var a ACK
	var cs charsetInfo
	decode := false
	h, hasMSH := PeekMSH(ack)
	if hasMSH {
		a.Delimiters = h.Delimiters()
		a.Version = internVersion(firstComponent(h.Field(12), a.Delimiters))
		if name := firstComponent(h.Field(18), a.Delimiters); len(name) > 0 {
			if info, ok := lookupCharset(string(name)); ok && info.enc != nil {
				cs, decode = info, true
			}
		}
	}
	foundMSA := false
	for rest := ack; len(rest) > 0; {
		line := rest
		if j := lineEnd(rest); j >= 0 {
			line, rest = rest[:j], rest[j+1:]
		} else {
			rest = nil
		}
		if len(line) < 3 || (len(line) > 3 && !usableSeparator(line[3])) {
			continue
		}
		isMSA := !foundMSA && string(line[:3]) == "MSA"
		if !isMSA && string(line[:3]) != "ERR" {
			continue
		}
		d := a.Delimiters
		if !hasMSH {
			if len(line) == 3 {
				continue // no separator to read the fields with
			}
			d = delimitersAfter(line[3])
			if !foundMSA {
				a.Delimiters = d
			}
		}
		if len(line) > 3 && line[3] != d.Field {
			continue // another field separator than the header's: not a segment of this ACK
		}
		s := lineText(line, cs, decode)
		if isMSA {
			foundMSA = true
			readMSA(&a, s, d)
		} else {
			a.Errors = append(a.Errors, readERR(s, d))
		}
	}
	switch {
	case !foundMSA:
		return a, ErrNoMSA
	case !a.Code.valid():
		return a, ErrAckCode
	}
	return a, nil
}

// usableSeparator reports whether c can be a field separator (as Parse
// requires of MSH-1): printable ASCII, not a letter, digit or space.
func usableSeparator(c byte) bool {
	return c > 0x20 && c < 0x7F && !isUpperDigit(c) && !(c >= 'a' && c <= 'z')
}

// delimitersAfter returns |^~\& with fs as the field separator; an encoding
// character equal to fs is left out.
func delimitersAfter(fs byte) Delimiters {
	d := DefaultDelimiters
	d.Field = fs
	for _, c := range []*byte{&d.Component, &d.Repetition, &d.Escape, &d.Subcomponent} {
		if *c == fs {
			*c = 0
		}
	}
	return d
}

// lineText converts one segment to a string: decoded from the declared
// character set when there is one, with invalid bytes replaced.
func lineText(line []byte, cs charsetInfo, decode bool) string {
	if decode && !isASCII(line) {
		if s, err := decodeBytes(cs, line); err == nil {
			return strings.ToValidUTF8(s, "\uFFFD")
		}
	}
	if !utf8.Valid(line) {
		return strings.ToValidUTF8(string(line), "\uFFFD")
	}
	return string(line)
}

// splitFields fills f with the first len(f) fields of a segment's text
// (f[0] is the segment ID, f[n] field n; fields beyond are left out).
func splitFields(f []string, s string, sep byte) {
	for i := range f {
		j := strings.IndexByte(s, sep)
		if j < 0 {
			f[i] = s
			return
		}
		f[i], s = s[:j], s[j+1:]
	}
}

func readMSA(a *ACK, s string, d Delimiters) {
	var f [4]string
	splitFields(f[:], s, d.Field)
	a.Code = ackCodeOf(strings.ToUpper(strings.TrimSpace(NewField(f[1], d).Value())))
	a.ControlID = strings.TrimSpace(NewField(f[2], d).Value())
	a.Text = NewField(f[3], d).Value()
}

func readERR(s string, d Delimiters) ACKError {
	var f [9]string
	splitFields(f[:], s, d.Field)
	var e ACKError
	eld := NewField(f[1], d).Rep(1) // ERR-1 (ELD, v2.1 to 2.4)
	loc := NewField(f[2], d).Rep(1) // ERR-2 (ERL, v2.5 on)
	if loc.IsEmpty() {
		e.Segment = eld.Component(1)
		e.Sequence = atoi(eld.Component(2))
		e.Field = atoi(eld.Component(3))
	} else {
		e.Segment = loc.Component(1)
		e.Sequence = atoi(loc.Component(2))
		e.Field = atoi(loc.Component(3))
		e.Repetition = atoi(loc.Component(4))
		e.Component = atoi(loc.Component(5))
		e.Subcomponent = atoi(loc.Component(6))
	}
	if code := NewField(f[3], d).Rep(1); !code.IsEmpty() {
		e.Code = atoi(code.Component(1))
		e.CodeText = code.Component(2)
	} else {
		e.Code = atoi(eld.Sub(4, 1))
		e.CodeText = eld.Sub(4, 2)
	}
	e.Severity = strings.TrimSpace(NewField(f[4], d).Value())
	e.Message = NewField(f[8], d).Value()
	return e
}

// atoi reads a non-negative decimal number of at most nine digits, 0 for
// anything else (an empty component is the usual case: strconv.Atoi would
// allocate its error).
func atoi(s string) int {
	s = strings.TrimSpace(s)
	if len(s) == 0 || len(s) > 9 {
		return 0
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// valid reports whether c is one of the six acknowledgement codes.
func (c AckCode) valid() bool {
	switch c {
	case AA, AE, AR, CA, CE, CR:
		return true
	}
	return false
}

// ackCodeOf returns the package's constant for the six codes (s itself
// otherwise), so that reading a usual ACK keeps no reference to its text.
func ackCodeOf(s string) AckCode {
	for _, c := range [...]AckCode{AA, AE, AR, CA, CE, CR} {
		if s == string(c) {
			return c
		}
	}
	return AckCode(s)
}

// firstComponent returns the first component of a field's first repetition.
func firstComponent(f []byte, d Delimiters) []byte {
	for i, c := range f {
		if c == d.Repetition && c != 0 || c == d.Component && c != 0 {
			return bytes.TrimSpace(f[:i])
		}
	}
	return bytes.TrimSpace(f)
}

// internVersion returns the version ID, without an allocation for the
// versions in HL7 table 0104 and with invalid UTF-8 replaced otherwise.
func internVersion(v []byte) string {
	switch string(v) {
	case "2.1":
		return "2.1"
	case "2.2":
		return "2.2"
	case "2.3":
		return "2.3"
	case "2.3.1":
		return "2.3.1"
	case "2.4":
		return "2.4"
	case "2.5":
		return "2.5"
	case "2.5.1":
		return "2.5.1"
	case "2.6":
		return "2.6"
	case "2.7":
		return "2.7"
	case "2.7.1":
		return "2.7.1"
	case "2.8":
		return "2.8"
	case "2.8.1":
		return "2.8.1"
	case "2.8.2":
		return "2.8.2"
	case "2.9":
		return "2.9"
	}
	return strings.ToValidUTF8(string(v), "\uFFFD")
}
