package httpapi

import (
	"net/http/httptest"
	"testing"
	"time"
)

func TestFormatDOB(t *testing.T) {
	for in, want := range map[string]string{
		"19650505": "5 May 1965", "19650505123000": "5 May 1965", "196505": "May 1965", "1965": "1965",
		"": "", "unknown": "unknown", "19651345": "1965", // month 13: only the year reads
	} {
		if got := formatDOB(in); got != want {
			t.Errorf("formatDOB(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCSVSafe(t *testing.T) {
	for in, want := range map[string]string{
		"=HYPERLINK(\"x\")": "'=HYPERLINK(\"x\")", "+1": "'+1", "-2": "'-2", "@SUM(A1)": "'@SUM(A1)",
		"\tx": "'\tx", "plain": "plain", "": "",
	} {
		if got := csvSafe(in); got != want {
			t.Errorf("csvSafe(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseAuditFilter(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		query, err string
	}{
		{"hold=h1&kind=override,transition&actor=Dr+Night&patient=abc&since=2026-12-01&until=2026-12-07&limit=10&offset=5", ""},
		{"hold=a.b", "bad_request: hold: not a hold ID"},
		{"kind=a*", `bad_request: kind "a*": not an audit kind`},
		{"since=yesterday", `bad_request: since: want ` + WhenFormats + `, got "yesterday"`},
		{"until=soon", `bad_request: until: want ` + WhenFormats + `, got "soon"`},
		{"limit=0", `bad_request: limit: want 1 to 5000, got "0"`},
		{"limit=5001", `bad_request: limit: want 1 to 5000, got "5001"`},
		{"offset=-1", `bad_request: offset: want a number >= 0, got "-1"`},
	} {
		f, err := parseAuditFilter(httptest.NewRequest("GET", "/api/audit?"+c.query, nil), now)
		if c.err != "" {
			if err == nil || err.Error() != c.err {
				t.Errorf("%s: error %v, want %s", c.query, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", c.query, err)
		}
		// until a date includes the day: events before the next midnight match.
		if !f.until.Equal(time.Date(2026, 12, 8, 0, 0, 0, 0, time.UTC)) || f.limit != 10 || f.offset != 5 ||
			len(f.q.Kinds) != 2 || f.q.HoldID != "h1" || f.actor != "Dr Night" || f.patient != "abc" {
			t.Errorf("%s: %+v", c.query, f)
		}
	}
}
