package report

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// FormatDuration renders seconds as a short human duration ("2d 3h",
// "5h 12m", "42m", "30s").
func FormatDuration(secs int64) string {
	d := time.Duration(secs) * time.Second
	days := int64(d / (24 * time.Hour))
	h := int64(d/time.Hour) % 24
	m := int64(d/time.Minute) % 60
	s := int64(d/time.Second) % 60
	switch {
	case days > 0:
		return fmt.Sprintf("%dd %dh", days, h)
	case h > 0:
		return fmt.Sprintf("%dh %dm", h, m)
	case m > 0:
		return fmt.Sprintf("%dm", m)
	default:
		return fmt.Sprintf("%ds", s)
	}
}

func durOrDash(p *int64) string {
	if p == nil {
		return "-"
	}
	return FormatDuration(*p)
}

func pct(v float64) string { return strconv.FormatFloat(v*100, 'f', 1, 64) + "%" }

func pctPtr(p *float64) string {
	if p == nil {
		return "-"
	}
	return pct(*p)
}

// WriteText writes the report as readable tables.
func WriteText(w io.Writer, r *Report) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	p := func(format string, args ...any) { fmt.Fprintf(tw, format, args...) }
	p("resultgate compliance report\n")
	p("Period:\t%s to %s (until excluded)\n", r.Period.Since.Format(time.RFC3339), r.Period.Until.Format(time.RFC3339))
	p("Generated:\t%s\n", r.Period.GeneratedAt.Format(time.RFC3339))
	results := "n/a"
	if r.Totals.Results != nil {
		results = strconv.Itoa(*r.Totals.Results)
	}
	p("Results decided:\t%s\n", results)
	p("Holds:\t%d (hold rate %s)\n", r.Totals.Holds, pctPtr(r.Totals.HoldRate))
	p("Released / still held / closed by sender:\t%d / %d / %d\n", r.Totals.Released, r.Totals.StillHeld, r.Totals.Closed)

	p("\nHolds by basis (a hold with several bases counts under each)\n")
	p("  BASIS\tHOLDS\tSHARE\tCOMPLIANCE RISK\n")
	for _, b := range r.ByBasis {
		risk := ""
		if b.ComplianceRisk {
			risk = "yes"
		}
		p("  %s (%s)\t%d\t%s\t%s\n", b.Label, b.Basis, b.Holds, pct(b.Share), risk)
	}
	p("\nHolds by tag\n")
	p("  TAG\tHOLDS\tSHARE\n")
	for _, t := range r.ByTag {
		p("  %s\t%d\t%s\n", t.Tag, t.Holds, pct(t.Share))
	}

	p("\nTime to release (%s)\n", r.TimeToRelease.Clock)
	p("  BY\tRELEASED\tMEDIAN\tP90\tMAX\n")
	row := func(label string, s Stats) {
		p("  %s\t%d\t%s\t%s\t%s\n", label, s.Count, durOrDash(s.MedianSeconds), durOrDash(s.P90Seconds), durOrDash(s.MaxSeconds))
	}
	row("all", r.TimeToRelease.Overall)
	for _, b := range r.TimeToRelease.ByBasis {
		row(b.Label+" ("+b.Basis+")", b.Stats)
	}
	for _, o := range r.TimeToRelease.ByOutcome {
		row("ended by "+o.Outcome, o.Stats)
	}
	if f := r.TimeToRelease.FallbackHolds; f > 0 {
		p("  (%d timed from hold creation: no readable OBR-22)\n", f)
	}

	p("\nHow holds ended\n")
	p("  OUTCOME\tHOLDS\tSHARE\n")
	for _, o := range r.Outcomes {
		p("  %s\t%d\t%s\n", o.Outcome, o.Holds, pct(o.Share))
	}

	p("\nOn-call overrides (%d)\n", len(r.Overrides))
	if len(r.Overrides) > 0 {
		p("  AT\tACTOR\tHOLD\tREASON\n")
		for _, o := range r.Overrides {
			p("  %s\t%s\t%s\t%s\n", o.At.Format(time.RFC3339), oneLine(o.Actor), o.HoldID, oneLine(o.Reason))
		}
	}

	p("\nCompliance risk: holds under organisational policy (%d)\n", r.Risk.Holds)
	for _, c := range r.Risk.Citations {
		p("  %s\t%d\n", oneLine(c.Citation), c.Holds)
	}
	if len(r.Risk.HoldIDs) > 0 {
		p("  hold IDs: %s\n", strings.Join(r.Risk.HoldIDs, " "))
	}

	p("\nConsistency by patient group (groups under %d shown as <%d; * withheld so a <%d cannot be derived)\n", r.MinCell, r.MinCell, r.MinCell)
	for _, dim := range []struct {
		name   string
		groups []Group
	}{{"age band at result time", r.Breakdown.AgeBand}, {"sex (PID-8)", r.Breakdown.Sex}, {"preferred language (PID-15)", r.Breakdown.Language}} {
		p("  %s\n", dim.name)
		p("    GROUP\tRESULTS\tHOLDS\tHOLD RATE\tRELEASED\tMEDIAN\tP90\tMAX\n")
		for _, g := range dim.groups {
			med, p90, mx := "-", "-", "-"
			if g.TimeToRelease != nil {
				med, p90, mx = durOrDash(g.TimeToRelease.MedianSeconds), durOrDash(g.TimeToRelease.P90Seconds), durOrDash(g.TimeToRelease.MaxSeconds)
			}
			p("    %s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", g.Group, g.Results, g.Holds, pctPtr(g.HoldRate), g.Released, med, p90, mx)
		}
	}
	if len(r.Notes) > 0 {
		p("\nNotes\n")
		for _, n := range r.Notes {
			p("  - %s\n", n)
		}
	}
	return tw.Flush()
}

// oneLine keeps free text on one table row.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// WriteCSV writes the report as CSV: one table per section, each opened by a
// header row whose first column is "section" and closed by an empty line;
// every data row starts with the section's name. See docs/COMPLIANCE.md.
func WriteCSV(w io.Writer, r *Report) error {
	cw := csv.NewWriter(w)
	first := true
	table := func(header []string, rows [][]string) {
		if !first {
			_ = cw.Write(nil)
		}
		first = false
		_ = cw.Write(append([]string{"section"}, header...))
		for _, row := range rows {
			_ = cw.Write(row)
		}
	}
	itoa := strconv.Itoa
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	fp := func(p *float64) string {
		if p == nil {
			return ""
		}
		return f(*p)
	}
	ip := func(p *int64) string {
		if p == nil {
			return ""
		}
		return strconv.FormatInt(*p, 10)
	}
	cell := func(c Cell) string {
		if c.Unknown {
			return ""
		}
		return c.String()
	}

	results := ""
	if r.Totals.Results != nil {
		results = itoa(*r.Totals.Results)
	}
	table([]string{"since", "until", "generated_at", "min_cell"}, [][]string{{"period",
		r.Period.Since.Format(time.RFC3339), r.Period.Until.Format(time.RFC3339), r.Period.GeneratedAt.Format(time.RFC3339), itoa(r.MinCell)}})
	table([]string{"results", "holds", "hold_rate", "released", "still_held", "closed", "demographics_missing"}, [][]string{{"totals",
		results, itoa(r.Totals.Holds), fp(r.Totals.HoldRate), itoa(r.Totals.Released), itoa(r.Totals.StillHeld), itoa(r.Totals.Closed), itoa(r.Totals.DemographicsMissing)}})

	var rows [][]string
	for _, b := range r.ByBasis {
		rows = append(rows, []string{"by_basis", b.Basis, itoa(b.Holds), f(b.Share), strconv.FormatBool(b.ComplianceRisk)})
	}
	table([]string{"basis", "holds", "share", "compliance_risk"}, rows)

	rows = nil
	for _, t := range r.ByTag {
		rows = append(rows, []string{"by_tag", t.Tag, itoa(t.Holds), f(t.Share)})
	}
	table([]string{"tag", "holds", "share"}, rows)

	rows = nil
	st := func(scope, key string, s Stats) []string {
		return []string{"time_to_release", scope, key, itoa(s.Count), ip(s.MedianSeconds), ip(s.P90Seconds), ip(s.MaxSeconds)}
	}
	rows = append(rows, st("overall", "all", r.TimeToRelease.Overall))
	for _, b := range r.TimeToRelease.ByBasis {
		rows = append(rows, st("basis", b.Basis, b.Stats))
	}
	for _, o := range r.TimeToRelease.ByOutcome {
		rows = append(rows, st("outcome", o.Outcome, o.Stats))
	}
	table([]string{"scope", "key", "released", "median_seconds", "p90_seconds", "max_seconds"}, rows)
	table([]string{"clock", "fallback_holds"}, [][]string{{"time_to_release_clock", r.TimeToRelease.Clock, itoa(r.TimeToRelease.FallbackHolds)}})

	rows = nil
	for _, o := range r.Outcomes {
		rows = append(rows, []string{"outcomes", o.Outcome, itoa(o.Holds), f(o.Share)})
	}
	table([]string{"outcome", "holds", "share"}, rows)

	rows = nil
	for _, o := range r.Overrides {
		rows = append(rows, []string{"overrides", o.HoldID, safe(o.Actor), o.Role, o.At.Format(time.RFC3339), safe(o.Reason), strings.Join(o.Bases, ";")})
	}
	table([]string{"hold_id", "actor", "role", "at", "reason", "bases"}, rows)

	rows = nil
	for _, id := range r.Risk.HoldIDs {
		rows = append(rows, []string{"compliance_risk", id})
	}
	table([]string{"hold_id"}, rows)
	rows = nil
	for _, c := range r.Risk.Citations {
		rows = append(rows, []string{"compliance_risk_citations", safe(c.Citation), itoa(c.Holds)})
	}
	table([]string{"citation", "holds"}, rows)

	rows = nil
	for _, dim := range []struct {
		name   string
		groups []Group
	}{{"age_band", r.Breakdown.AgeBand}, {"sex", r.Breakdown.Sex}, {"language", r.Breakdown.Language}} {
		for _, g := range dim.groups {
			var s Stats
			if g.TimeToRelease != nil {
				s = *g.TimeToRelease
			}
			rows = append(rows, []string{"breakdown", dim.name, safe(g.Group), cell(g.Results), cell(g.Holds), fp(g.HoldRate), cell(g.Released),
				ip(s.MedianSeconds), ip(s.P90Seconds), ip(s.MaxSeconds)})
		}
	}
	table([]string{"dimension", "group", "results", "holds", "hold_rate", "released", "median_seconds", "p90_seconds", "max_seconds"}, rows)

	rows = nil
	for _, n := range r.Notes {
		rows = append(rows, []string{"notes", n})
	}
	table([]string{"note"}, rows)
	cw.Flush()
	return cw.Error()
}

// safe keeps free text from being read as a formula by spreadsheet programs
// (CSV injection): a leading =, +, -, @, tab or CR gets a leading quote.
func safe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
