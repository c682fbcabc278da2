package report

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/resultgate/resultgate/router/hold"
)

var (
	since = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	until = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	t0    = time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
)

func demo(sex, lang string, birth string) Demographics {
	d := Demographics{Known: true, Sex: sex, Language: lang}
	if birth != "" {
		d.BirthDate, _ = time.Parse("2006-01-02", birth)
	}
	return d
}

func released(path hold.ReleasePath, at time.Time) *Release {
	return &Release{Path: path, Actor: "Dr Delta", Role: "clinician", At: at}
}

// fixture is a month with seven holds in the period, one before it, and 13
// results released without a hold.
func fixture() Input {
	stateLaw := Basis{Kind: "state-law", Citation: "KRS 333.152"}
	patient := Basis{Kind: "patient-request"}
	holds := []Hold{
		{ID: "h1", State: hold.StateReleased, Bases: []Basis{stateLaw}, Tags: []string{"malignancy", "pathology"},
			CreatedAt: t0.Add(time.Minute), FinalisedAt: t0, Release: released(hold.PathAcknowledged, t0.Add(2*time.Hour)),
			Demographics: demo("F", "en", "1960-05-01")},
		{ID: "h2", State: hold.StateReleased, Bases: []Basis{stateLaw}, Tags: []string{"pathology"},
			CreatedAt: t0.Add(time.Minute), FinalisedAt: t0, Release: released(hold.PathDeadline, t0.Add(72*time.Hour)),
			Demographics: demo("F", "en", "1990-03-03")},
		{ID: "h3", State: hold.StateReleased, Bases: []Basis{patient, stateLaw}, Tags: []string{"pathology", "pathology"},
			CreatedAt: t0.Add(time.Minute), FinalisedAt: t0,
			Release:      &Release{Path: hold.PathOverride, Actor: "Dr Night", Role: "oncall", Reason: "patient called, asked for it", At: t0.Add(time.Hour)},
			Demographics: demo("M", "es", "1975-01-01")},
		{ID: "h4", State: hold.StateHeld, Bases: []Basis{{Kind: "organisational-policy", ComplianceRisk: true, Citation: "POL-7"}}, Tags: []string{"imaging"},
			CreatedAt: t0.Add(48 * time.Hour), FinalisedAt: t0.Add(47 * time.Hour), Demographics: demo("M", "en", "1950-01-01")},
		{ID: "h5", State: hold.StateReleased, Bases: []Basis{{Kind: "clinician-determination"}}, Tags: []string{"genetics"},
			CreatedAt: t0.Add(30 * time.Minute), Release: released(hold.PathAcknowledged, t0.Add(4*time.Hour+30*time.Minute)),
			Demographics: demo("F", "", "2015-06-01")},
		{ID: "h6", State: hold.StateSuperseded, Bases: []Basis{{Kind: "data-error"}}, Tags: []string{"pathology"},
			CreatedAt: t0.Add(time.Hour), FinalisedAt: t0},
		{ID: "h8", State: hold.StateReleased, Bases: []Basis{patient}, Tags: []string{"malignancy"},
			CreatedAt: t0.Add(2 * time.Hour), FinalisedAt: t0, Release: released(hold.PathPatientRevoked, t0.Add(10*time.Hour)),
			Demographics: demo("F", "en", "1980-01-01")},
		{ID: "h0-before", State: hold.StateReleased, Bases: []Basis{stateLaw}, CreatedAt: since.Add(-time.Second),
			Release: released(hold.PathDeadline, since.Add(time.Hour))},
	}
	var unheld []Result
	for i := range 13 {
		unheld = append(unheld, Result{At: t0.Add(time.Duration(i) * time.Hour), Demographics: demo("M", "en", "1970-01-01")})
	}
	unheld = append(unheld, Result{At: until, Demographics: demo("M", "en", "1970-01-01")}) // outside: until is excluded
	return Input{Since: since, Until: until, GeneratedAt: t0.Add(100 * time.Hour), Holds: holds, Unheld: unheld, ResultsKnown: true}
}

func i64(v int64) *int64 { return &v }

func stat(n int, med, p90, mx int64) Stats {
	return Stats{Count: n, MedianSeconds: i64(med), P90Seconds: i64(p90), MaxSeconds: i64(mx)}
}

func TestComputeFigures(t *testing.T) {
	r := Compute(fixture())

	results, rate := 20, 0.35
	wantTotals := Totals{Results: &results, Holds: 7, HoldRate: &rate, Released: 5, Closed: 1, StillHeld: 1, DemographicsMissing: 1}
	if !reflect.DeepEqual(r.Totals, wantTotals) {
		t.Errorf("totals = %+v, want %+v", r.Totals, wantTotals)
	}
	wantBasis := []BasisCount{
		{Basis: "state-law", Label: "State law", Holds: 3, Share: 0.4286},
		{Basis: "patient-request", Label: "Patient's request", Holds: 2, Share: 0.2857},
		{Basis: "clinician-determination", Label: "Clinician's determination (preventing harm)", Holds: 1, Share: 0.1429},
		{Basis: "data-error", Label: "Possible data error", Holds: 1, Share: 0.1429},
		{Basis: "organisational-policy", Label: "Organisation's policy (compliance risk)", Holds: 1, Share: 0.1429, ComplianceRisk: true},
	}
	if !reflect.DeepEqual(r.ByBasis, wantBasis) {
		t.Errorf("by basis = %+v", r.ByBasis)
	}
	wantTags := []TagCount{{"pathology", 4, 0.5714}, {"malignancy", 2, 0.2857}, {"genetics", 1, 0.1429}, {"imaging", 1, 0.1429}}
	if !reflect.DeepEqual(r.ByTag, wantTags) {
		t.Errorf("by tag = %+v", r.ByTag)
	}

	// Released delays (s): h1 7200, h2 259200, h3 3600, h5 14400 (from
	// creation: no OBR-22), h8 36000.
	// Sorted 3600 7200 14400 36000 259200: median 14400; p90 at rank 3.6 =
	// 36000 + 0.6*(259200-36000) = 169920.
	tt := r.TimeToRelease
	if tt.FallbackHolds != 1 {
		t.Errorf("fallback holds = %d, want 1", tt.FallbackHolds)
	}
	if !reflect.DeepEqual(tt.Overall, stat(5, 14400, 169920, 259200)) {
		t.Errorf("overall = %s", js(tt.Overall))
	}
	wantByBasis := []BasisStats{
		// 3600 7200 259200: median 7200; p90 at 1.8 = 7200 + 0.8*252000.
		{"state-law", hold.KindText("state-law"), stat(3, 7200, 208800, 259200)},
		// 3600 36000: median 19800; p90 at 0.9 = 3600 + 0.9*32400.
		{"patient-request", hold.KindText("patient-request"), stat(2, 19800, 32760, 36000)},
		{"clinician-determination", hold.KindText("clinician-determination"), stat(1, 14400, 14400, 14400)},
		{"data-error", hold.KindText("data-error"), Stats{}},
		{"organisational-policy", hold.KindText("organisational-policy"), Stats{}},
	}
	if !reflect.DeepEqual(tt.ByBasis, wantByBasis) {
		t.Errorf("time to release by basis = %s", js(tt.ByBasis))
	}
	wantByOutcome := []OutcomeStats{
		{OutcomeClinician, stat(2, 10800, 13680, 14400)},
		{OutcomeOverride, stat(1, 3600, 3600, 3600)},
		{OutcomeDeadline, stat(1, 259200, 259200, 259200)},
		{OutcomePatientRevoked, stat(1, 36000, 36000, 36000)},
	}
	if !reflect.DeepEqual(tt.ByOutcome, wantByOutcome) {
		t.Errorf("time to release by outcome = %s", js(tt.ByOutcome))
	}

	wantOutcomes := []Outcome{
		{OutcomeClinician, 2, 0.2857}, {OutcomeOverride, 1, 0.1429}, {OutcomeDeadline, 1, 0.1429},
		{OutcomePatientDelay, 0, 0}, {OutcomePatientRevoked, 1, 0.1429}, {OutcomeReevaluated, 0, 0}, {OutcomeCorrection, 1, 0.1429},
		{OutcomeStillHeld, 1, 0.1429},
	}
	if !reflect.DeepEqual(r.Outcomes, wantOutcomes) {
		t.Errorf("outcomes = %+v", r.Outcomes)
	}
	wantOverrides := []Override{{HoldID: "h3", Actor: "Dr Night", Role: "oncall", At: t0.Add(time.Hour),
		Reason: "patient called, asked for it", Bases: []string{"patient-request", "state-law"}}}
	if !reflect.DeepEqual(r.Overrides, wantOverrides) {
		t.Errorf("overrides = %+v", r.Overrides)
	}
	wantRisk := Risk{Holds: 1, HoldIDs: []string{"h4"}, Citations: []CitationCount{{"POL-7", 1}}}
	if !reflect.DeepEqual(r.Risk, wantRisk) {
		t.Errorf("risk = %+v", r.Risk)
	}
	for _, want := range []string{"no readable OBR-22", "no readable inbound message", "organisational policy"} {
		if !strings.Contains(strings.Join(r.Notes, "\n"), want) {
			t.Errorf("notes %q lack %q", r.Notes, want)
		}
	}
}

func TestBreakdownAgeBands(t *testing.T) {
	r := Compute(fixture())
	// Results: 13 unheld aged 56 (40-64); holds h1 66 (65+), h2 36, h3 51,
	// h4 76, h5 11 at creation (no OBR-22), h6 unknown, h8 46.
	got := map[string]string{}
	for _, g := range r.Breakdown.AgeBand {
		got[g.Group] = g.Results.String() + "/" + g.Holds.String() + "/" + g.Released.String()
	}
	want := map[string]string{
		Age0to17:   "<5/<5/<5",
		Age18to39:  "<5/<5/<5",
		Age40to64:  "15/<5/<5",
		Age65up:    "<5/<5/<5",
		GroupUnset: "<5/<5/0",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("age bands = %v, want %v", got, want)
	}
	var order []string
	for _, g := range r.Breakdown.AgeBand {
		order = append(order, g.Group)
	}
	if !reflect.DeepEqual(order, ageOrder) {
		t.Errorf("age band order = %v", order)
	}
}

func TestSuppression(t *testing.T) {
	var holds []Hold
	var unheld []Result
	add := func(sex string, nHolds, nUnheld int) {
		for i := range nHolds {
			holds = append(holds, Hold{ID: sex + string(rune('a'+i)), State: hold.StateReleased, Bases: []Basis{{Kind: "state-law"}},
				CreatedAt: t0, FinalisedAt: t0, Release: released(hold.PathAcknowledged, t0.Add(time.Duration(i+1)*time.Hour)),
				Demographics: demo(sex, "en", "1980-01-01")})
		}
		for range nUnheld {
			unheld = append(unheld, Result{At: t0, Demographics: demo(sex, "en", "1980-01-01")})
		}
	}
	add("F", 4, 2)
	add("M", 5, 2)
	add("", 1, 1)
	in := Input{Since: since, Until: until, GeneratedAt: t0, Holds: holds, Unheld: unheld, ResultsKnown: true}

	rate := 0.7143
	mStats := stat(5, 3*3600, 16560, 5*3600) // 1..5 h: p90 at rank 3.6 = 4h + 0.6*1h
	tests := []struct {
		name string
		in   Input
		want []Group
	}{
		{"primary and complementary", in, []Group{
			// Results 6, 7, 2: the 2 is "<5" and, being alone, makes the
			// smallest shown cell (6) withheld. Holds 4, 5, 1: two "<5",
			// no complement needed.
			{Group: "F", Results: Cell{N: 6, Suppressed: "*"}, Holds: Cell{N: 4, Suppressed: "<5"}, Released: Cell{N: 4, Suppressed: "<5"}},
			{Group: "M", Results: Cell{N: 7}, Holds: Cell{N: 5}, HoldRate: &rate, Released: Cell{N: 5}, TimeToRelease: &mStats},
			{Group: GroupUnset, Results: Cell{N: 2, Suppressed: "<5"}, Holds: Cell{N: 1, Suppressed: "<5"}, Released: Cell{N: 1, Suppressed: "<5"}},
		}},
		{"results unknown", func() Input { c := in; c.ResultsKnown = false; return c }(), []Group{
			{Group: "F", Results: Cell{Unknown: true}, Holds: Cell{N: 4, Suppressed: "<5"}, Released: Cell{N: 4, Suppressed: "<5"}},
			{Group: "M", Results: Cell{Unknown: true}, Holds: Cell{N: 5}, Released: Cell{N: 5}, TimeToRelease: &mStats},
			{Group: GroupUnset, Results: Cell{Unknown: true}, Holds: Cell{N: 1, Suppressed: "<5"}, Released: Cell{N: 1, Suppressed: "<5"}},
		}},
		// With threshold 2 only the unknown group's 1 is small; its
		// complement is F's 4 (the smallest shown), not M's 5.
		{"threshold 2", func() Input { c := in; c.MinCell = 2; return c }(), []Group{
			{Group: "F", Results: Cell{N: 6}, Holds: Cell{N: 4, Suppressed: "*"}, Released: Cell{N: 4, Suppressed: "*"}},
			{Group: "M", Results: Cell{N: 7}, Holds: Cell{N: 5}, HoldRate: &rate, Released: Cell{N: 5}, TimeToRelease: &mStats},
			{Group: GroupUnset, Results: Cell{N: 2}, Holds: Cell{N: 1, Suppressed: "<2"}, Released: Cell{N: 1, Suppressed: "<2"}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Compute(tt.in).Breakdown.Sex
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("sex breakdown:\n got %s\nwant %s", js(got), js(tt.want))
			}
		})
	}
}

func TestPercentile(t *testing.T) {
	tests := []struct {
		name   string
		values []int64
		p      float64
		want   int64
	}{
		{"empty", nil, 0.5, 0},
		{"one", []int64{7}, 0.9, 7},
		{"even median is the mean of the middle two", []int64{10, 20, 30, 40}, 0.5, 25},
		{"odd median", []int64{1, 2, 100}, 0.5, 2},
		{"p90 of ten", []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 0.9, 9}, // rank 8.1: 9.1 rounds to 9
		{"p90 of eleven", []int64{0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100}, 0.9, 90},
		{"max", []int64{3, 5}, 1, 5},
		{"rounds half away from zero", []int64{1, 2}, 0.5, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Percentile(tt.values, tt.p); got != tt.want {
				t.Errorf("Percentile(%v, %v) = %d, want %d", tt.values, tt.p, got, tt.want)
			}
		})
	}
}

func TestAgeBand(t *testing.T) {
	d := func(s string) time.Time { v, _ := time.Parse("2006-01-02", s); return v }
	tests := []struct {
		name        string
		birth, at   time.Time
		want        string
		wantAge     int
		wantKnownOK bool
	}{
		{"day before 18th birthday", d("2008-11-02"), d("2026-11-01"), Age0to17, 17, true},
		{"18th birthday", d("2008-11-02"), d("2026-11-02"), Age18to39, 18, true},
		{"39", d("1987-01-01"), d("2026-12-31"), Age18to39, 39, true},
		{"40", d("1986-11-02"), d("2026-11-02"), Age40to64, 40, true},
		{"day before 65th", d("1961-11-03"), d("2026-11-02"), Age40to64, 64, true},
		{"65th birthday", d("1961-11-02"), d("2026-11-02"), Age65up, 65, true},
		{"newborn", d("2026-11-02"), d("2026-11-02"), Age0to17, 0, true},
		{"no birth date", time.Time{}, d("2026-11-02"), GroupUnset, 0, false},
		{"born after the result", d("2027-01-01"), d("2026-11-02"), GroupUnset, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := AgeBand(tt.birth, tt.at); got != tt.want {
				t.Errorf("AgeBand = %q, want %q", got, tt.want)
			}
			if age, ok := AgeAt(tt.birth, tt.at); age != tt.wantAge || ok != tt.wantKnownOK {
				t.Errorf("AgeAt = %d, %v; want %d, %v", age, ok, tt.wantAge, tt.wantKnownOK)
			}
		})
	}
}

func TestFallbacksAndEdges(t *testing.T) {
	tests := []struct {
		name string
		hold Hold
		want Stats
		fell int
	}{
		{"OBR-22 absent: from creation", Hold{ID: "a", State: hold.StateReleased, CreatedAt: t0, Release: released(hold.PathDeadline, t0.Add(time.Hour))}, stat(1, 3600, 3600, 3600), 1},
		{"released before OBR-22 counts zero", Hold{ID: "b", State: hold.StateReleased, CreatedAt: t0, FinalisedAt: t0.Add(time.Hour), Release: released(hold.PathAcknowledged, t0)}, stat(1, 0, 0, 0), 0},
		{"released without a release record", Hold{ID: "c", State: hold.StateReleased, CreatedAt: t0}, Stats{}, 0},
		{"still held", Hold{ID: "d", State: hold.StateHeld, CreatedAt: t0}, Stats{}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Compute(Input{Since: since, Until: until, Holds: []Hold{tt.hold}})
			if !reflect.DeepEqual(r.TimeToRelease.Overall, tt.want) || r.TimeToRelease.FallbackHolds != tt.fell {
				t.Errorf("overall = %s, fallbacks %d; want %s, %d", js(r.TimeToRelease.Overall), r.TimeToRelease.FallbackHolds, js(tt.want), tt.fell)
			}
			if r.Totals.Results != nil || r.Totals.HoldRate != nil {
				t.Errorf("results unknown but totals = %+v", r.Totals)
			}
			if got := r.ByBasis; len(got) != 1 || got[0].Basis != GroupUnset {
				t.Errorf("a hold without bases is listed under %+v", got)
			}
		})
	}
}

func TestEmptyReportJSON(t *testing.T) {
	r := Compute(Input{Since: since, Until: until, GeneratedAt: t0, ResultsKnown: true})
	got := js(r)
	for _, want := range []string{`"by_basis":[]`, `"overrides":[]`, `"hold_ids":[]`, `"age_band":[]`, `"results":0`, `"hold_rate":null`, `"median_seconds":null`} {
		if !strings.Contains(got, want) {
			t.Errorf("empty report lacks %s: %s", want, got)
		}
	}
}

func TestJSONShapeAndRoundTrip(t *testing.T) {
	r := Compute(fixture())
	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range top {
		keys = append(keys, k)
	}
	want := []string{"breakdown", "by_basis", "by_tag", "compliance_risk", "min_cell", "notes", "outcomes", "overrides", "period", "time_to_release", "totals"}
	if strings.Join(sorted(keys), ",") != strings.Join(want, ",") {
		t.Errorf("top-level keys = %v, want %v", sorted(keys), want)
	}
	// No demographics or dates of birth leak: only group labels.
	for _, bad := range []string{"1960-05-01", "birth", "\"es\":"} {
		if strings.Contains(string(data), bad) {
			t.Errorf("report JSON contains %q", bad)
		}
	}
	if !strings.Contains(string(data), `"results":"\u003c5"`) || !strings.Contains(string(data), `"results":15`) {
		t.Errorf("cells not marshalled as numbers and markers: %s", data)
	}
	var back Report
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	// Suppressed counts do not travel: the round trip keeps what is published.
	if again := js(back); again != string(data) {
		t.Errorf("round trip differs:\n%s\n%s", again, data)
	}
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func TestWriteText(t *testing.T) {
	var b bytes.Buffer
	if err := WriteText(&b, Compute(fixture())); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"Holds:", "7 (hold rate 35.0%)",
		"state-law", "organisational-policy", "yes",
		"all", "4h 0m", "1d 23h", "3d 0h", // median 14400 s, p90 169920 s, max 259200 s
		"Dr Night", "patient called, asked for it",
		"POL-7", "hold IDs: h4",
		"40-64", "<5",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("text lacks %q:\n%s", want, out)
		}
	}
}

func TestWriteCSV(t *testing.T) {
	in := fixture()
	in.Holds[2].Release.Reason = "=HYPERLINK(\"x\")"
	var b bytes.Buffer
	if err := WriteCSV(&b, Compute(in)); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	tables := strings.Split(strings.TrimSpace(out), "\n\n")
	var heads []string
	for _, tb := range tables {
		heads = append(heads, strings.SplitN(tb, "\n", 2)[0])
	}
	wantHeads := []string{
		"section,since,until,generated_at,min_cell",
		"section,results,holds,hold_rate,released,still_held,closed,demographics_missing",
		"section,basis,holds,share,compliance_risk",
		"section,tag,holds,share",
		"section,scope,key,released,median_seconds,p90_seconds,max_seconds",
		"section,clock,fallback_holds",
		"section,outcome,holds,share",
		"section,hold_id,actor,role,at,reason,bases",
		"section,hold_id",
		"section,citation,holds",
		"section,dimension,group,results,holds,hold_rate,released,median_seconds,p90_seconds,max_seconds",
		"section,note",
	}
	if !reflect.DeepEqual(heads, wantHeads) {
		t.Errorf("CSV tables:\n%s", strings.Join(heads, "\n"))
	}
	for _, want := range []string{
		"totals,20,7,0.35,5,1,1,1",
		"time_to_release,overall,all,5,14400,169920,259200",
		"time_to_release,basis,state-law,3,7200,208800,259200",
		`overrides,h3,Dr Night,oncall,2026-11-02T11:00:00Z,"'=HYPERLINK(""x"")",patient-request;state-law`,
		"compliance_risk,h4",
		"breakdown,age_band,40-64,15,<5,,<5,,,",
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("CSV lacks %q:\n%s", want, out)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	for secs, want := range map[int64]string{0: "0s", 59: "59s", 60: "1m", 3599: "59m", 3600: "1h 0m", 86399: "23h 59m", 90000: "1d 1h"} {
		if got := FormatDuration(secs); got != want {
			t.Errorf("FormatDuration(%d) = %q, want %q", secs, got, want)
		}
	}
}

func js(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestPatientDelayIsNotDeadlineDrift: a hold released when the patient's
// requested delay ended is its own outcome, not a hard-deadline release.
func TestPatientDelayIsNotDeadlineDrift(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	delay := Hold{ID: "a", State: hold.StateReleased, CreatedAt: t0, Release: released(hold.PathPatientDelayEnded, t0.Add(48*time.Hour))}
	cut := Hold{ID: "b", State: hold.StateReleased, CreatedAt: t0, Release: released(hold.PathDeadline, t0.Add(72*time.Hour))}
	if got := outcomeOf(delay); got != OutcomePatientDelay {
		t.Errorf("outcome of a delay that ended as asked = %q", got)
	}
	if got := outcomeOf(cut); got != OutcomeDeadline {
		t.Errorf("outcome of a hard-deadline release = %q", got)
	}
}
