package fhirmap

import (
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

// The regular expressions the scanners in scan.go replace, kept as their
// oracles.
var (
	oracleCodeRe        = regexp.MustCompile(`^[^\s]+( [^\s]+)*$`)
	oracleInvalidCharRe = regexp.MustCompile("[\x00-\x08\x0B\x0C\x0E-\x1F\x7F]")
	oracleFHIRIDRe      = regexp.MustCompile(`^[A-Za-z0-9\-.]{1,64}$`)
	oracleIDPrefixRe    = regexp.MustCompile(`^[A-Za-z0-9\-.]{0,28}$`)
	oracleDTMRe         = regexp.MustCompile(`^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.(\d{1,4}))?([+-]\d{4})?$`)
	oracleNumRe         = regexp.MustCompile(`^([+-]?)(\d*)(?:\.(\d*))?$`)
	oracleRangeRe       = regexp.MustCompile(`^\s*(-?[0-9]*\.?[0-9]+)\s*(?:-|–|to)\s*(-?[0-9]*\.?[0-9]+)\s*$`)
	oracleBoundRe       = regexp.MustCompile(`^\s*(<=|>=|<|>|≤|≥)\s*([0-9]*\.?[0-9]+)\s*$`)
)

// oracleText is text as it was written with invalidCharRe.
func oracleText(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if strings.IndexByte(s, '\r') >= 0 {
		s = strings.ReplaceAll(s, "\r\n", "\n")
		s = strings.ReplaceAll(s, "\r", "\n")
	}
	if oracleInvalidCharRe.MatchString(s) {
		s = oracleInvalidCharRe.ReplaceAllString(s, " ")
	}
	return s
}

// checkScanners compares every scanner with its regular expression on s.
func checkScanners(t *testing.T, s string) {
	t.Helper()
	if got, want := text(s), oracleText(s); got != want {
		t.Errorf("text(%q) = %q, want %q", s, got, want)
	}
	if got, want := code(s), strings.Join(strings.Fields(oracleText(s)), " "); got != want {
		t.Errorf("code(%q) = %q, want %q", s, got, want)
	}
	if got, want := isCode(s), oracleCodeRe.MatchString(s); got != want {
		t.Errorf("isCode(%q) = %v, want %v", s, got, want)
	}
	if got, want := isIDChars(s, 1, 64), oracleFHIRIDRe.MatchString(s); got != want {
		t.Errorf("isIDChars(%q, 1, 64) = %v, want %v", s, got, want)
	}
	if got, want := isIDChars(s, 0, 28), oracleIDPrefixRe.MatchString(s); got != want {
		t.Errorf("isIDChars(%q, 0, 28) = %v, want %v", s, got, want)
	}
	m, ok := dtmParts(s)
	if want := oracleDTMRe.FindStringSubmatch(s); ok != (want != nil) || ok && !equalStrings(m[:], want) {
		t.Errorf("dtmParts(%q) = %q, %v; want %q", s, m, ok, want)
	}
	sign, ip, frac, ok := numParts(s)
	if want := oracleNumRe.FindStringSubmatch(s); ok != (want != nil) || ok && !equalStrings([]string{s, sign, ip, frac}, want) {
		t.Errorf("numParts(%q) = %q %q %q %v; want %q", s, sign, ip, frac, ok, want)
	}
	lo, hi, ok := rangeParts(s)
	if want := oracleRangeRe.FindStringSubmatch(s); ok != (want != nil) || ok && !equalStrings([]string{s, lo, hi}, want) {
		t.Errorf("rangeParts(%q) = %q %q %v; want %q", s, lo, hi, ok, want)
	}
	cmp, num, ok := boundParts(s)
	if want := oracleBoundRe.FindStringSubmatch(s); ok != (want != nil) || ok && !equalStrings([]string{s, cmp, num}, want) {
		t.Errorf("boundParts(%q) = %q %q %v; want %q", s, cmp, num, ok, want)
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

var scannerSeeds = []string{
	"", " ", "a", "a b", "a  b", " a", "a ", "a\tb", "a\vb", "a\fb", "a\rb", "a\r\nb", "\x00\x01\x7f", "é", "\xff", "a\u00a0b", "a\u0085b",
	"rg-", "pk-0123abcd", strings.Repeat("a", 28), strings.Repeat("a", 29), strings.Repeat("b", 64), strings.Repeat("b", 65), "a/b", "a_b",
	"2026", "202611", "2026112", "20261123", "2026112310", "202611231015", "20261123101530", "2026112310153012", "20261123101530.1",
	"20261123101530.12345", "20261123101530.1234-0500", "2026+0000", "2026.1", "20261123.", "20261123+000", "20261123+00000", "20261123-0500x",
	"5", "+5", "-5", "05", ".5", "5.", "5.10", "000", "-0.0", "+", "-", ".", "1e5", "1,5", "1.2.3", "--1", "+.", "-.5",
	"3.5-5.1", "3.5 - 5.1", " 70-99 ", "-1--2", "1 to 2", "1to2", "1–2", "1 – 2", ".5-.7", "5.-6", "1.2.3-4", "1-", "-1", "- 1-2", "1 - -2", "1-2 x", "1\f-\r2",
	"<5", "<=5", "< = 5", ">=10", "> 10", "≤ 3", "≥3.5", "<-5", "<5.", "<.5", "=<5", "<>5", "< 5 ", "\t>\n7\r",
}

// TestScanners compares each scanner with the regular expression it replaces.
func TestScanners(t *testing.T) {
	for _, s := range scannerSeeds {
		checkScanners(t, s)
	}
}

// FuzzScanners compares each scanner with the regular expression it replaces
// on arbitrary strings.
func FuzzScanners(f *testing.F) {
	for _, s := range scannerSeeds {
		f.Add(s)
	}
	f.Fuzz(checkScanners)
}
