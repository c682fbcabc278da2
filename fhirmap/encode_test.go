package fhirmap

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestEncoderStringsEveryOffset holds str, which skips eight bytes at a time
// while none needs escaping, to encoding/json's escaping with each kind of
// byte it must stop at (control characters, '"', '\\', DEL, multi-byte and
// invalid UTF-8, U+2028) at every offset of a word and around the string's
// tail, where the eight-byte steps end.
func TestEncoderStringsEveryOffset(t *testing.T) {
	specials := []string{"\x00", "\x01", "\x08", "\t", "\n", "\r", "\x1f", "\"", "\\", "\x7f", " ", "!", "#", "[", "]", "\xc3\xa9", "\xff", "\xc3", "\u2028", "\u2029", "中", "🙂", "<", "&"}
	for _, sp := range specials {
		for n := 0; n <= 20; n++ {
			for pos := 0; pos <= n; pos++ {
				s := strings.Repeat("a", pos) + sp + strings.Repeat("b", n-pos)
				var e encoder
				got := e.str(nil, s)
				want, err := jsonStringReference(s)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("%q: got %s, want %s", s, got, want)
				}
			}
		}
	}
}

// TestSpecial8 checks the word test against the byte test it stands for,
// for every byte value at every position of a word.
func TestSpecial8(t *testing.T) {
	for c := range 256 {
		want := c < 0x20 || c == '"' || c == '\\' || c >= 0x80
		for pos := range 8 {
			w := []byte("abcdefgh")
			w[pos] = byte(c)
			if got := special8(load64(string(w), 0)); got != want {
				t.Fatalf("byte %#x at %d: special8 = %v, want %v", c, pos, got, want)
			}
		}
	}
}

// TestAppendTime holds appendTime to time.Time.AppendFormat for every layout
// the encoder uses, at the edges of its fast path (years 0 and 9999, the
// turn of a year, whole and fractional seconds) and past them.
func TestAppendTime(t *testing.T) {
	layouts := []string{layoutYear, layoutMonth, layoutDay, layoutSecondsUTC, layoutMillisUTC, layoutMicrosUTC,
		layoutTimeSecond, layoutTimeMillis, layoutTimeMicros, layoutSeconds, layoutMillis, layoutMicros}
	times := []time.Time{
		time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC).Add(-time.Hour),
		time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1970, 1, 1, 23, 59, 59, 999999000, time.UTC),
		time.Date(2026, 11, 23, 16, 15, 0, 0, time.UTC),
		time.Date(2026, 12, 31, 23, 59, 59, 1000, time.UTC),
		time.Date(2024, 2, 29, 9, 5, 7, 120000000, time.UTC),
		time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-1, 6, 1, 0, 0, 0, 0, time.UTC),
	}
	for _, tm := range times {
		for _, l := range layouts {
			if got, want := appendTime([]byte("x"), tm, l), tm.AppendFormat([]byte("x"), l); !bytes.Equal(got, want) {
				t.Errorf("%v with %q: got %s, want %s", tm, l, got, want)
			}
		}
	}
}
