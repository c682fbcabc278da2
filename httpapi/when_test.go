package httpapi

import (
	"testing"
	"time"
)

func TestParseWhen(t *testing.T) {
	now := time.Date(2026, 12, 7, 21, 30, 0, 0, time.UTC)
	tests := []struct {
		in     string
		want   time.Time
		isDate bool
	}{
		{"2026-12-07", time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC), true},
		{"2026-12-07T08:00:00Z", time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC), false},
		{"2026-12-07T08:00:00-06:00", time.Date(2026, 12, 7, 14, 0, 0, 0, time.UTC), false},
		{"2026-12-07T08:00:00.5+01:00", time.Date(2026, 12, 7, 7, 0, 0, 5e8, time.UTC), false},
		{"24h", time.Date(2026, 12, 6, 21, 30, 0, 0, time.UTC), false},
		{"90m", time.Date(2026, 12, 7, 20, 0, 0, 0, time.UTC), false},
	}
	for _, tt := range tests {
		got, isDate, err := ParseWhen(tt.in, now)
		if err != nil || !got.Equal(tt.want) || got.Location() != time.UTC || isDate != tt.isDate {
			t.Errorf("ParseWhen(%q) = %v, %t, %v; want %v, %t", tt.in, got, isDate, err, tt.want, tt.isDate)
		}
	}
	for _, bad := range []string{"", "yesterday", "-5h", "0s", "2026-13-01", "2026-12-07 08:00", "07/12/2026"} {
		_, _, err := ParseWhen(bad, now)
		if want := "want " + WhenFormats + `, got "` + bad + `"`; err == nil || err.Error() != want {
			t.Errorf("ParseWhen(%q): error %v, want %q", bad, err, want)
		}
	}
}
