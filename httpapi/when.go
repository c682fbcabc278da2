package httpapi

import (
	"fmt"
	"time"
)

// WhenFormats describes the one rule by which the HTTP API's time parameters
// (audit since; report since and until) and the CLI's time flags (audit
// --since; report --since and --until) are read, in the words of error
// messages and help texts.
const WhenFormats = "an RFC 3339 time (2026-12-07T08:00:00Z), a date (2026-12-07, UTC) or a duration ago (24h)"

// ParseWhen reads s by the one time rule of the API and the CLI: an RFC 3339
// time (an instant, its offset kept in the instant), a date YYYY-MM-DD (the
// start of that day in UTC; isDate says so, for an until that includes the
// day) or a positive Go duration (24h, 90m) meaning that long before now.
// The result is in UTC.
func ParseWhen(s string, now time.Time) (t time.Time, isDate bool, err error) {
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, true, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), false, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d).UTC(), false, nil
	}
	return time.Time{}, false, fmt.Errorf("want %s, got %q", WhenFormats, s)
}
