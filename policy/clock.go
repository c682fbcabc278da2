package policy

import (
	"fmt"
	"time"
)

// Calendar counts calendar and business days in one time zone with a set of
// holidays. The zero Calendar is UTC, Monday to Friday, no holidays.
type Calendar struct {
	loc      *time.Location
	holidays map[string]bool // "2006-01-02" in loc
	workdays [7]bool
}

// NewCalendar builds a calendar. tz "" means UTC; holidays are YYYY-MM-DD;
// businessDays are "mon".."sun" (nil means Monday to Friday).
func NewCalendar(tz string, holidays, businessDays []string) (*Calendar, error) {
	c := &Calendar{loc: time.UTC, holidays: map[string]bool{}}
	if tz != "" {
		loc, err := time.LoadLocation(tz)
		if err != nil {
			return nil, fmt.Errorf("time zone %q: %w", tz, err)
		}
		c.loc = loc
	}
	for _, h := range holidays {
		if _, err := time.Parse("2006-01-02", h); err != nil {
			return nil, fmt.Errorf("holiday %q: want YYYY-MM-DD", h)
		}
		c.holidays[h] = true
	}
	if businessDays == nil {
		for d := time.Monday; d <= time.Friday; d++ {
			c.workdays[d] = true
		}
	}
	for _, name := range businessDays {
		d, ok := weekdayNames[asciiLower(name)]
		if !ok {
			return nil, fmt.Errorf("business day %q: want mon..sun", name)
		}
		c.workdays[d] = true
	}
	return c, nil
}

// Location returns the calendar's time zone.
func (c *Calendar) Location() *time.Location {
	if c == nil || c.loc == nil {
		return time.UTC
	}
	return c.loc
}

// IsBusinessDay reports whether the local date of t is a business day.
func (c *Calendar) IsBusinessDay(t time.Time) bool {
	t = t.In(c.Location())
	if c == nil {
		wd := t.Weekday()
		return wd != time.Saturday && wd != time.Sunday
	}
	return c.workdays[t.Weekday()] && !c.holidays[t.Format("2006-01-02")]
}

// AddCalendarDays returns t plus n calendar days at the same local wall-clock
// time. A wall-clock time that does not exist on the target day (the spring
// DST gap) moves forward past the gap; an ambiguous one (the autumn overlap)
// takes the first occurrence.
func (c *Calendar) AddCalendarDays(t time.Time, n int) time.Time {
	lt := t.In(c.Location())
	y, m, d := lt.Date()
	return wallTime(y, m, d+n, lt.Hour(), lt.Minute(), lt.Second(), lt.Nanosecond(), c.Location())
}

// wallTime is time.Date, except that a wall-clock time that does not exist
// (it falls in a DST gap) is moved forward past the gap, never backward:
// time.Date may resolve 02:30 on a spring-forward day to 01:30, which would
// release a result an hour before its clock ends. An ambiguous time (the
// autumn overlap) keeps time.Date's choice, the first occurrence.
func wallTime(y int, mo time.Month, d, h, mi, s, ns int, loc *time.Location) time.Time {
	t := time.Date(y, mo, d, h, mi, s, ns, loc)
	if t.Hour() == h && t.Minute() == mi {
		return t
	}
	// Interpret the wall time with the offsets in force on either side of the
	// transition and take the later instant.
	naive := time.Date(y, mo, d, h, mi, s, ns, time.UTC)
	best := t
	for _, probe := range []time.Time{t.Add(-12 * time.Hour), t.Add(12 * time.Hour)} {
		_, off := probe.Zone()
		if c := naive.Add(-time.Duration(off) * time.Second); c.After(best) {
			best = c
		}
	}
	return best.In(loc)
}

// AddBusinessDays returns t plus n business days at the same local wall-clock
// time. When t falls outside a business day (weekend or holiday) the count
// starts at 00:00 of the next business day, so one business day after a
// Saturday is the start of the day after the next business day: a full
// business day has passed.
func (c *Calendar) AddBusinessDays(t time.Time, n int) time.Time {
	loc := c.Location()
	lt := t.In(loc)
	y, m, d := lt.Date()
	hh, mm, ss, ns := lt.Hour(), lt.Minute(), lt.Second(), lt.Nanosecond()
	if !c.IsBusinessDay(lt) {
		hh, mm, ss, ns = 0, 0, 0, 0
		for i := 0; i < 3660; i++ {
			d++
			if c.IsBusinessDay(time.Date(y, m, d, 12, 0, 0, 0, loc)) {
				break
			}
		}
	}
	for added, i := 0, 0; added < n && i < 3660; i++ {
		d++
		if c.IsBusinessDay(time.Date(y, m, d, 12, 0, 0, 0, loc)) {
			added++
		}
	}
	return wallTime(y, m, d, hh, mm, ss, ns, loc)
}

// NotBeforeDay returns 00:00 local time on the nth calendar day after the
// local date of t ("not before the third day after finalisation": finalised
// on Monday at any hour, releasable from Thursday 00:00). On a day whose
// midnight falls in a DST gap (e.g. America/Santiago) it is the first instant
// of that day.
func (c *Calendar) NotBeforeDay(t time.Time, n int) time.Time {
	lt := t.In(c.Location())
	y, m, d := lt.Date()
	return wallTime(y, m, d+n, 0, 0, 0, 0, c.Location())
}

// Apply returns the end of clock k started at t.
func (c *Calendar) Apply(k Clock, t time.Time) time.Time {
	switch {
	case k.Hours > 0:
		return t.Add(time.Duration(k.Hours) * time.Hour)
	case k.CalendarDays > 0:
		return c.AddCalendarDays(t, k.CalendarDays)
	case k.BusinessDays > 0:
		return c.AddBusinessDays(t, k.BusinessDays)
	case k.NotBeforeDay > 0:
		return c.NotBeforeDay(t, k.NotBeforeDay)
	}
	return t
}

// countsDays reports whether the clock counts days, which start and end at
// local midnight and so depend on a time zone (a clock of hours does not).
func (k Clock) countsDays() bool {
	return k.CalendarDays > 0 || k.BusinessDays > 0 || k.NotBeforeDay > 0
}

// String describes the clock, e.g. "72 hours" or "not before day 3".
func (k Clock) String() string {
	switch {
	case k.Hours > 0:
		return pluralUnit(k.Hours, "hour")
	case k.CalendarDays > 0:
		return pluralUnit(k.CalendarDays, "calendar day")
	case k.BusinessDays > 0:
		return pluralUnit(k.BusinessDays, "business day")
	case k.NotBeforeDay > 0:
		return fmt.Sprintf("not before day %d", k.NotBeforeDay)
	}
	return "no delay"
}

func pluralUnit(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}

func asciiLower(s string) string {
	b := []byte(s)
	for i, ch := range b {
		if 'A' <= ch && ch <= 'Z' {
			b[i] = ch + 'a' - 'A'
		}
	}
	return string(b)
}
