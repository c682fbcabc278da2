package fhirmap

import (
	"strings"
	"unicode/utf8"
)

// This file holds the mapping's lexical checks, written as byte scanners.
// Each replaces a regular expression (kept in scan_test.go as the oracle it
// is tested and fuzzed against, FuzzScanners) and returns what that
// expression's match or submatches returned: the regexp engine was about a
// third of the mapping's CPU time.

// isDigit reports whether b is an ASCII digit (the regexps' \d and [0-9]).
func isDigit(b byte) bool { return b >= '0' && b <= '9' }

// isPerlSpace reports whether b is in the regexps' \s ([\t\n\f\r ]).
func isPerlSpace(b byte) bool {
	return b == ' ' || b == '\t' || b == '\n' || b == '\f' || b == '\r'
}

func skipPerlSpace(s string, i int) int {
	for i < len(s) && isPerlSpace(s[i]) {
		i++
	}
	return i
}

// text makes s a valid FHIR string: valid UTF-8, line breaks as "\n", no
// control characters other than tab and newline. It does not trim. The
// common case, printable ASCII, tab and newline only, returns s unchanged.
func text(s string) string {
	for i := 0; i < len(s); i++ {
		if b := s[i]; b >= 0x7f || (b < 0x20 && b != '\t' && b != '\n') {
			return textSlow(s)
		}
	}
	return s
}

func textSlow(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if strings.IndexByte(s, '\r') >= 0 {
		s = strings.ReplaceAll(s, "\r\n", "\n")
		s = strings.ReplaceAll(s, "\r", "\n")
	}
	// Control characters other than tab and newline become spaces
	// ([\x00-\x08\x0B\x0C\x0E-\x1F\x7F]). s is valid UTF-8 here, so a byte
	// below 0x80 is a character of its own.
	var b []byte
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == 0x7f || (c < 0x20 && c != '\t' && c != '\n' && c != '\r') {
			if b == nil {
				b = []byte(s)
			}
			b[i] = ' '
		}
	}
	if b != nil {
		return string(b)
	}
	return s
}

// code normalises s to a FHIR code (single inner spaces, no outer white
// space), or "" when nothing is left. The common case, ASCII with single
// inner spaces, returns text(s) unchanged.
func code(s string) string {
	s = text(s)
	for i := 0; i < len(s); i++ {
		b := s[i]
		if b >= 0x80 || b == '\t' || b == '\n' || b == '\v' || b == '\f' || b == '\r' ||
			(b == ' ' && (i == 0 || i == len(s)-1 || s[i+1] == ' ')) {
			return strings.Join(strings.Fields(s), " ")
		}
	}
	return s
}

// isCode reports whether s matches FHIR's code pattern as the mapping
// checks it, ^[^\s]+( [^\s]+)*$: not empty, no tab, newline, form feed or
// carriage return, no leading, trailing or double space.
func isCode(s string) bool {
	if s == "" || s[0] == ' ' || s[len(s)-1] == ' ' {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\t', '\n', '\f', '\r':
			return false
		case ' ':
			if s[i+1] == ' ' {
				return false
			}
		}
	}
	return true
}

// isIDChars reports whether s is between minLen and maxLen characters from
// [A-Za-z0-9.-] (a FHIR id, or an id prefix).
func isIDChars(s string, minLen, maxLen int) bool {
	if len(s) < minLen || len(s) > maxLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !(isDigit(b) || b >= 'A' && b <= 'Z' || b >= 'a' && b <= 'z' || b == '-' || b == '.') {
			return false
		}
	}
	return true
}

// dtmParts splits an HL7 DTM as
// ^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.(\d{1,4}))?([+-]\d{4})?$
// does, into the same submatches (m[0] the whole, "" for a group that did
// not take part); ok is false when it does not match.
func dtmParts(s string) (m [9]string, ok bool) {
	n := 0
	for n < len(s) && isDigit(s[n]) {
		n++
	}
	// The digits can only be consumed whole, by the year and up to five
	// two-digit groups: what follows them must be '.', a sign or the end.
	if n < 4 || n > 14 || n%2 != 0 {
		return m, false
	}
	m[1] = s[:4]
	for g, i := 2, 4; i < n; g, i = g+1, i+2 {
		m[g] = s[i : i+2]
	}
	i := n
	if i < len(s) && s[i] == '.' {
		j := i + 1
		for j < len(s) && isDigit(s[j]) {
			j++
		}
		if d := j - (i + 1); d < 1 || d > 4 {
			return m, false
		}
		m[7] = s[i+1 : j]
		i = j
	}
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		if len(s)-i != 5 || !isDigits(s[i+1:]) {
			return m, false
		}
		m[8] = s[i:]
		i = len(s)
	}
	if i != len(s) {
		return m, false
	}
	m[0] = s
	return m, true
}

// numParts splits a number as ^([+-]?)(\d*)(?:\.(\d*))?$ does: sign,
// integer digits, fraction digits.
func numParts(s string) (sign, intPart, frac string, ok bool) {
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		sign = s[:1]
		i = 1
	}
	j := i
	for j < len(s) && isDigit(s[j]) {
		j++
	}
	intPart = s[i:j]
	if j < len(s) && s[j] == '.' {
		k := j + 1
		for k < len(s) && isDigit(s[k]) {
			k++
		}
		frac = s[j+1 : k]
		j = k
	}
	if j != len(s) {
		return "", "", "", false
	}
	return sign, intPart, frac, true
}

// scanNumber matches -?[0-9]*\.?[0-9]+ (the sign only when neg) at s[i:],
// where the number must be followed by neither a digit nor a dot, and
// returns its end. Such a number is the whole run of digits and dots after
// the sign, with at most one dot and a digit last.
func scanNumber(s string, i int, neg bool) (int, bool) {
	if neg && i < len(s) && s[i] == '-' {
		i++
	}
	j, dots := i, 0
	for j < len(s) && (isDigit(s[j]) || s[j] == '.') {
		if s[j] == '.' {
			dots++
		}
		j++
	}
	if j == i || dots > 1 || s[j-1] == '.' {
		return 0, false
	}
	return j, true
}

// rangeParts splits a reference range as
// ^\s*(-?[0-9]*\.?[0-9]+)\s*(?:-|–|to)\s*(-?[0-9]*\.?[0-9]+)\s*$ does.
func rangeParts(s string) (lo, hi string, ok bool) {
	i := skipPerlSpace(s, 0)
	a := i
	if i, ok = scanNumber(s, i, true); !ok {
		return "", "", false
	}
	lo = s[a:i]
	i = skipPerlSpace(s, i)
	switch r := s[i:]; {
	case strings.HasPrefix(r, "-"):
		i++
	case strings.HasPrefix(r, "–"):
		i += len("–")
	case strings.HasPrefix(r, "to"):
		i += 2
	default:
		return "", "", false
	}
	i = skipPerlSpace(s, i)
	b := i
	if i, ok = scanNumber(s, i, true); !ok {
		return "", "", false
	}
	hi = s[b:i]
	if skipPerlSpace(s, i) != len(s) {
		return "", "", false
	}
	return lo, hi, true
}

// boundParts splits a one-sided reference range as
// ^\s*(<=|>=|<|>|≤|≥)\s*([0-9]*\.?[0-9]+)\s*$ does.
func boundParts(s string) (cmp, num string, ok bool) {
	i := skipPerlSpace(s, 0)
	for _, c := range [...]string{"<=", ">=", "<", ">", "≤", "≥"} {
		if strings.HasPrefix(s[i:], c) {
			cmp = c
			break
		}
	}
	if cmp == "" {
		return "", "", false
	}
	i = skipPerlSpace(s, i+len(cmp))
	a := i
	if i, ok = scanNumber(s, i, false); !ok {
		return "", "", false
	}
	num = s[a:i]
	if skipPerlSpace(s, i) != len(s) {
		return "", "", false
	}
	return cmp, num, true
}
