package hl7

import (
	"fmt"
	"strings"
	"sync"
	"time"
)

// Precision is how much of a DTM value was given.
type Precision int

// Precisions, from year to fractions of a second.
const (
	PrecisionYear Precision = iota + 1
	PrecisionMonth
	PrecisionDay
	PrecisionHour
	PrecisionMinute
	PrecisionSecond
	PrecisionFraction
)

// String returns the precision's name ("day", "second", ...).
func (p Precision) String() string {
	switch p {
	case PrecisionYear:
		return "year"
	case PrecisionMonth:
		return "month"
	case PrecisionDay:
		return "day"
	case PrecisionHour:
		return "hour"
	case PrecisionMinute:
		return "minute"
	case PrecisionSecond:
		return "second"
	case PrecisionFraction:
		return "fraction"
	}
	return "unknown"
}

// ParseTime parses an HL7 date/time (DTM, or DT, or the first component of a
// v2.3–v2.5 TS): YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ]. A value with a
// UTC offset is returned in a fixed zone with that offset; one without is read in
// loc (time.UTC when loc is nil), which should be the sender's zone. Missing
// parts take their earliest value (month 1, day 1, 00:00:00). Surrounding spaces
// and a "^precision" suffix are ignored; anything else malformed (letters, a
// 13th month, 25 o'clock, an odd number of digits) is ErrBadTime.
func ParseTime(s string, loc *time.Location) (time.Time, error) {
	t, _, err := ParseTimePrecision(s, loc)
	return t, err
}

// fixedZones caches the locations of the UTC offsets seen ("-0500" →
// time.FixedZone("-0500", -18000)): a message carries a handful of
// timestamps, all with the sender's offset, and each FixedZone is three
// allocations. The offsets are validated (±HHMM, HH ≤ 14, MM ≤ 59), so the
// cache holds at most 2×15×60 entries.
var fixedZones sync.Map

func fixedZone(off string, secs int) *time.Location {
	if l, ok := fixedZones.Load(off); ok {
		return l.(*time.Location)
	}
	off = strings.Clone(off) // off may be a slice of a message's bytes
	l, _ := fixedZones.LoadOrStore(off, time.FixedZone(off, secs))
	return l.(*time.Location)
}

// ParseTimePrecision is ParseTime that also reports how precise the value is.
func ParseTimePrecision(s string, loc *time.Location) (time.Time, Precision, error) {
	orig := s
	bad := func(why string) (time.Time, Precision, error) {
		return time.Time{}, 0, fmt.Errorf("%w %q: %s", ErrBadTime, orig, why)
	}
	if i := strings.IndexByte(s, '^'); i >= 0 {
		s = s[:i]
	}
	s = strings.TrimSpace(s)
	if loc == nil {
		loc = time.UTC
	}
	if s == "" {
		return bad("empty")
	}
	// Offset.
	if i := strings.IndexAny(s, "+-"); i >= 0 {
		off := s[i:]
		s = s[:i]
		if len(off) != 5 || !allDigits(off[1:]) {
			return bad("UTC offset must be +HHMM or -HHMM")
		}
		h, m := atoi2(off[1:3]), atoi2(off[3:5])
		if h > 14 || m > 59 {
			return bad("UTC offset out of range")
		}
		secs := h*3600 + m*60
		if off[0] == '-' {
			secs = -secs
		}
		loc = fixedZone(off, secs)
	}
	// Fraction.
	frac, nanos := "", 0
	if i := strings.IndexByte(s, '.'); i >= 0 {
		frac, s = s[i+1:], s[:i]
		if len(s) != 14 {
			return bad("fraction of a second needs YYYYMMDDHHMMSS before it")
		}
		if frac == "" || len(frac) > 9 || !allDigits(frac) {
			return bad("fraction of a second must be 1 to 9 digits")
		}
		nanos = atoiN(frac)
		for k := len(frac); k < 9; k++ {
			nanos *= 10
		}
	}
	if !allDigits(s) {
		return bad("not digits")
	}
	var prec Precision
	switch len(s) {
	case 4:
		prec = PrecisionYear
	case 6:
		prec = PrecisionMonth
	case 8:
		prec = PrecisionDay
	case 10:
		prec = PrecisionHour
	case 12:
		prec = PrecisionMinute
	case 14:
		prec = PrecisionSecond
	default:
		return bad("want 4, 6, 8, 10, 12 or 14 digits")
	}
	if frac != "" {
		prec = PrecisionFraction
	}
	year, month, day, hour, minute, sec := atoiN(s[:4]), 1, 1, 0, 0, 0
	if len(s) >= 6 {
		month = atoi2(s[4:6])
	}
	if len(s) >= 8 {
		day = atoi2(s[6:8])
	}
	if len(s) >= 10 {
		hour = atoi2(s[8:10])
	}
	if len(s) >= 12 {
		minute = atoi2(s[10:12])
	}
	if len(s) >= 14 {
		sec = atoi2(s[12:14])
	}
	if month < 1 || month > 12 {
		return bad("month out of range")
	}
	if day < 1 || day > daysIn(year, month) {
		return bad("day out of range")
	}
	if hour > 23 || minute > 59 || sec > 59 {
		return bad("time of day out of range")
	}
	return time.Date(year, time.Month(month), day, hour, minute, sec, nanos, loc), prec, nil
}

// FormatTime formats t as an HL7 DTM to the second with its UTC offset
// (YYYYMMDDHHMMSS+ZZZZ).
func FormatTime(t time.Time) string { return t.Format("20060102150405-0700") }

func daysIn(year, month int) int {
	return time.Date(year, time.Month(month)+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func atoi2(s string) int { return int(s[0]-'0')*10 + int(s[1]-'0') }

func atoiN(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		n = n*10 + int(s[i]-'0')
	}
	return n
}
