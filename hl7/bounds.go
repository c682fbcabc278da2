package hl7

import (
	"strconv"
	"unicode/utf8"
)

// Bounds on header values. A message header is read on every message (the
// intake keys, stores and logs MSH-3, MSH-4, MSH-9, MSH-10 and MSH-12, and an
// acknowledgement echoes MSH-3 to MSH-6, MSH-10 to MSH-12 and MSH-18), so a
// value a sender made hundreds of kilobytes long must be refused up front,
// never copied into a NATS header (limited to 64 KiB), a log line or an ACK.
const (
	// MaxHeaderValue is the longest raw header value, in bytes, that
	// CheckHeaderBounds accepts and an ACK echoes: 199, the length of an ST
	// value such as MSH-10 and MSA-2 from v2.7 (20 before; real senders use
	// 36-character UUIDs, so the v2.5 length would refuse them).
	MaxHeaderValue = 199
	// MaxHDValue bounds the hierarchic designators MSH-3 to MSH-6: 227 bytes,
	// the v2.5 length of HD (IS 20, ST 199, ID 6 and two separators).
	MaxHDValue = 227
)

// headerBounds lists the header fields CheckHeaderBounds checks, in order:
// every field the intake stores or logs and the ACK echoes.
var headerBounds = [...]struct {
	field int
	name  string
	max   int
}{
	{10, "message control ID", MaxHeaderValue},
	{9, "message type", MaxHeaderValue},
	{3, "sending application", MaxHDValue},
	{4, "sending facility", MaxHDValue},
	{5, "receiving application", MaxHDValue},
	{6, "receiving facility", MaxHDValue},
	{11, "processing ID", MaxHeaderValue},
	{12, "version ID", MaxHeaderValue},
}

// CheckHeaderBounds reports the first MSH field, of those a receiver keys,
// stores, logs or echoes (MSH-10, MSH-9, MSH-3 to MSH-6, MSH-11, MSH-12),
// whose raw value (as written, all repetitions) is longer than its bound
// (MaxHeaderValue, MaxHDValue for MSH-3 to MSH-6). The ErrorDetail, for an
// AR/CR, names the field and the bound with table 0357 code 102 (data type
// error: the table has no code for a length) and quotes none of the value.
func (m *Message) CheckHeaderBounds() (ErrorDetail, bool) {
	s := &m.segs[0]
	for _, b := range headerBounds {
		if n := len(s.Field(b.field).Raw()); n > b.max {
			f := strconv.Itoa(b.field)
			return ErrorDetail{Code: CodeDataTypeError, Severity: "E", Segment: "MSH", Sequence: 1, Field: b.field,
				Message: "MSH-" + f + " (" + b.name + ") is " + strconv.Itoa(n) + " characters long; at most " +
					strconv.Itoa(b.max) + " are accepted"}, true
		}
	}
	return ErrorDetail{}, false
}

// TruncateValue returns s cut to at most max bytes, for echoing or logging a
// value a sender controls. It never cuts a UTF-8 character in two and, for a
// value still escaped with escape character esc (0 for an unescaped value),
// never leaves an escape sequence open: the cut moves back to the start of
// the sequence it would split. A value within the bound is returned as it is.
func TruncateValue(s string, max int, esc byte) string {
	if len(s) <= max {
		return s
	}
	if max <= 0 {
		return ""
	}
	n := max
	// At most three bytes back: a UTF-8 character has at most three
	// continuation bytes, and a value in a single-byte character set (whose
	// bytes above 0x7F may all look like continuations) loses no more.
	for k := 0; k < utf8.UTFMax-1 && n > 0 && !utf8.RuneStart(s[n]); k++ {
		n--
	}
	s = s[:n]
	if esc != 0 {
		open := -1
		for i := 0; i < len(s); i++ {
			if s[i] == esc {
				if open < 0 {
					open = i
				} else {
					open = -1
				}
			}
		}
		if open >= 0 {
			s = s[:open]
		}
	}
	return s
}
