package hl7

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Parse errors are *ParseError values that wrap one of these, so
// callers test with errors.Is and read the location with errors.As.
var (
	// ErrEmpty means the input holds no segment at all (only blanks or nothing).
	ErrEmpty = errors.New("empty message")
	// ErrNoMSH means the input does not start with an MSH segment.
	ErrNoMSH = errors.New("message does not start with MSH")
	// ErrBadDelimiters means MSH-1 or MSH-2 is missing or unusable: an encoding
	// character repeated or equal to the field separator, a line break, or more
	// than five of them.
	ErrBadDelimiters = errors.New("invalid delimiters in MSH-1/MSH-2")
	// ErrBadSegmentID means a segment does not start with a three-character ID
	// of upper-case letters and digits (for example a line hard-wrapped in the
	// middle of a field).
	ErrBadSegmentID = errors.New("invalid segment ID")
	// ErrJoinedSegments means a field holds what looks like the start of another
	// segment after a space ("...| OBX|1|TX|..."): segments joined without a
	// terminator. Accepting it would hide the joined segments (an OBX would be
	// lost inside an OBR), so it is always an error.
	ErrJoinedSegments = errors.New("segments joined without a segment terminator")
	// ErrMultipleMessages means Parse was given more than one MSH segment; split
	// the input with SplitMessages first.
	ErrMultipleMessages = errors.New("more than one message in input")
	// ErrBatch means Parse was given a batch or file (FHS/BHS/BTS/FTS); split it
	// with SplitMessages first.
	ErrBatch = errors.New("input is a batch or file, not a single message")
	// ErrBadBatch means a batch or file is not well formed (a header inside a
	// message or batch, a segment outside any message, data after FTS).
	ErrBadBatch = errors.New("malformed batch")
	// ErrUnsupportedCharset means MSH-18 names a character set this package
	// cannot decode and no fallback was configured.
	ErrUnsupportedCharset = errors.New("unsupported character set")
	// ErrCharsetMismatch means, in strict mode, that the bytes are not valid in the
	// declared character set (for example invalid UTF-8 under "UNICODE UTF-8").
	ErrCharsetMismatch = errors.New("bytes do not match the declared character set")
	// ErrMissingField means, in strict mode, that a field every version requires
	// (MSH-9, MSH-10, MSH-11, MSH-12) is empty.
	ErrMissingField = errors.New("required field missing")
	// ErrTooLarge means the input is larger than the parser can address (1 GiB);
	// transports bound messages well below that.
	ErrTooLarge = errors.New("message too large")
	// ErrBadPath means a field path such as "PID-3.1" is malformed.
	ErrBadPath = errors.New("invalid field path")
	// ErrSegmentNotFound means Get named a segment the message does not have.
	ErrSegmentNotFound = errors.New("segment not found")
	// ErrNotORU means ORU was called on a message whose MSH-9.1 is not ORU.
	ErrNotORU = errors.New("not an ORU message")
	// ErrBadTime means a DTM/TS value could not be parsed.
	ErrBadTime = errors.New("invalid HL7 date/time")
)

// ParseError locates a problem in the input. Err is one of the package's sentinel
// errors.
type ParseError struct {
	Err       error  // sentinel, for errors.Is
	Segment   string // segment ID where known ("MSH"), else ""
	Line      int    // 1-based line of the message (blank lines not counted; with a valid message, the segment's position)
	Offset    int    // byte offset in the input where the problem starts
	Field     int    // field number in standard numbering, 0 if not field-specific
	Component int    // component number, 0 if not component-specific
	Detail    string // what exactly is wrong
}

// Error formats the error as
// "hl7: segment MSH (line 1, byte 4) field 2: invalid delimiters in MSH-1/MSH-2: <detail>".
func (e *ParseError) Error() string {
	var b strings.Builder
	b.WriteString("hl7: ")
	if e.Segment != "" || e.Line > 0 {
		b.WriteString("segment ")
		if e.Segment != "" {
			b.WriteString(e.Segment)
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "(line %d, byte %d)", e.Line, e.Offset)
		if e.Field > 0 {
			fmt.Fprintf(&b, " field %d", e.Field)
			if e.Component > 0 {
				fmt.Fprintf(&b, " component %d", e.Component)
			}
		}
		b.WriteString(": ")
	}
	b.WriteString(e.Err.Error())
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	return b.String()
}

// Unwrap returns the sentinel.
func (e *ParseError) Unwrap() error { return e.Err }

// ErrorDetail converts the parse error into an ACK error (table 0357 code and
// location) for BuildACK: 100 (segment sequence error) for structure problems,
// 102 (data type error) for delimiter and character-set problems, 207
// (application internal error) otherwise.
func (e *ParseError) ErrorDetail() ErrorDetail {
	code := CodeInternalError
	switch {
	case errors.Is(e.Err, ErrBadDelimiters), errors.Is(e.Err, ErrCharsetMismatch):
		code = CodeDataTypeError
	case errors.Is(e.Err, ErrUnsupportedCharset):
		code = CodeDataTypeError
	case errors.Is(e.Err, ErrMissingField):
		code = CodeRequiredMissing
	case errors.Is(e.Err, ErrNoMSH), errors.Is(e.Err, ErrBadSegmentID), errors.Is(e.Err, ErrJoinedSegments),
		errors.Is(e.Err, ErrMultipleMessages), errors.Is(e.Err, ErrBatch), errors.Is(e.Err, ErrBadBatch),
		errors.Is(e.Err, ErrEmpty):
		code = CodeSegmentSequence
	}
	seg := e.Segment
	if len(seg) != 3 {
		seg = ""
	}
	d := ErrorDetail{Code: code, Severity: "E", Segment: seg, Field: e.Field, Component: e.Component, Message: e.Err.Error()}
	if seg != "" {
		d.Sequence = 1
	}
	if e.Detail != "" {
		d.Message += ": " + e.Detail
	}
	return d
}

// ErrorDetailFor converts any error from this package into an ACK error detail;
// errors that are not *ParseError become code 207.
func ErrorDetailFor(err error) ErrorDetail {
	var pe *ParseError
	if errors.As(err, &pe) {
		return pe.ErrorDetail()
	}
	return ErrorDetail{Code: CodeInternalError, Severity: "E", Message: err.Error()}
}
