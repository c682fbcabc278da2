package policy

import (
	"testing"
	"time"
)

func TestCalendar(t *testing.T) {
	ny, err := NewCalendar("America/New_York", []string{"2026-12-25", "2026-11-26"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	santiago, err := NewCalendar("America/Santiago", nil, nil) // DST changes at local midnight
	if err != nil {
		t.Fatal(err)
	}
	weekend, err := NewCalendar("Asia/Jerusalem", nil, []string{"sun", "mon", "tue", "wed", "thu"})
	if err != nil {
		t.Fatal(err)
	}
	at := func(s string) time.Time { return utc(s) }
	tests := []struct {
		name string
		got  time.Time
		want string
	}{
		{"calendar day across spring forward keeps 10:00", ny.AddCalendarDays(at("2026-03-07T15:00:00Z"), 1), "2026-03-08T14:00:00Z"},
		{"calendar day into the spring gap moves forward", ny.AddCalendarDays(at("2026-03-07T07:30:00Z"), 1), "2026-03-08T07:30:00Z"},
		{"calendar day across fall back keeps 10:00", ny.AddCalendarDays(at("2026-10-31T14:00:00Z"), 1), "2026-11-01T15:00:00Z"},
		{"hours stay absolute", ny.Apply(Clock{Hours: 24}, at("2026-03-07T15:00:00Z")), "2026-03-08T15:00:00Z"},
		{"business day Monday to Tuesday", ny.AddBusinessDays(at("2026-03-02T15:00:00Z"), 1), "2026-03-03T15:00:00Z"},
		{"business day Friday to Monday", ny.AddBusinessDays(at("2026-03-06T15:00:00Z"), 1), "2026-03-09T14:00:00Z"},
		{"business day over Thanksgiving", ny.AddBusinessDays(at("2026-11-25T15:00:00Z"), 1), "2026-11-27T15:00:00Z"},
		{"business days over Christmas and a weekend", ny.AddBusinessDays(at("2026-12-24T15:00:00Z"), 2), "2026-12-29T15:00:00Z"},
		{"business day from a holiday starts next morning", ny.AddBusinessDays(at("2026-12-25T15:00:00Z"), 1), "2026-12-29T05:00:00Z"},
		{"business day from Sunday", ny.AddBusinessDays(at("2026-03-08T15:00:00Z"), 1), "2026-03-10T04:00:00Z"},
		{"zero business days from a weekday is the same time", ny.AddBusinessDays(at("2026-03-02T15:00:00Z"), 0), "2026-03-02T15:00:00Z"},
		{"local date decides the weekday (Friday 22:00 EST is Saturday UTC)", ny.AddBusinessDays(at("2026-03-07T03:00:00Z"), 1), "2026-03-10T02:00:00Z"},
		{"Sunday-Thursday week: Thursday to Sunday", weekend.AddBusinessDays(at("2026-03-05T08:00:00Z"), 1), "2026-03-08T08:00:00Z"},
		{"not before day 3 from Monday afternoon", ny.NotBeforeDay(at("2026-03-02T20:00:00Z"), 3), "2026-03-05T05:00:00Z"},
		{"not before day 3 from 23:59 local", ny.NotBeforeDay(at("2026-03-03T04:59:00Z"), 3), "2026-03-05T05:00:00Z"},
		{"not before day 3 across spring forward", ny.NotBeforeDay(at("2026-03-06T15:00:00Z"), 3), "2026-03-09T04:00:00Z"},
		{"not before day when midnight does not exist", santiago.NotBeforeDay(at("2026-09-04T15:00:00Z"), 2), "2026-09-06T04:00:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.got.UTC().Format(time.RFC3339); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestCalendarErrors(t *testing.T) {
	for _, tc := range []struct {
		tz       string
		holidays []string
		days     []string
	}{
		{"Nowhere/City", nil, nil}, {"", []string{"25/12/2026"}, nil}, {"", nil, []string{"someday"}},
	} {
		if _, err := NewCalendar(tc.tz, tc.holidays, tc.days); err == nil {
			t.Errorf("NewCalendar(%q, %v, %v) accepted", tc.tz, tc.holidays, tc.days)
		}
	}
	var zero *Calendar
	if zero.Location() != time.UTC || !zero.IsBusinessDay(utc("2026-03-02T12:00:00Z")) || zero.IsBusinessDay(utc("2026-03-07T12:00:00Z")) {
		t.Error("nil calendar is not UTC Monday to Friday")
	}
}

func TestNormalizeLanguage(t *testing.T) {
	for in, want := range map[string]string{
		"en": "en", "EN": "en", "eng": "en", "es-US": "es", "SPA^Spanish^ISO6392": "es", "Spanish": "es",
		"fre": "fr", "zh_TW": "zh", "": "", " vie ": "vi", "x-klingon": "x",
	} {
		if got := NormalizeLanguage(in); got != want {
			t.Errorf("NormalizeLanguage(%q) = %q, want %q", in, got, want)
		}
	}
}
