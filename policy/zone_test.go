package policy

import (
	"strings"
	"testing"
	"time"
)

// TestStatuteClockZones checks, with exact instants, that each clock counts
// days in its own zone: the statute's (its rule's or preset's), the
// facility's when configured (a state that spans two zones), never merely the
// instance's policy.time_zone; and that DST changes move no clock.
func TestStatuteClockZones(t *testing.T) {
	tx := JurisdictionRule{Statute: "US-TX-OCC-159.0062"}
	day1 := JurisdictionRule{Citation: "test statute", AppliesTo: [][]string{{TagPathology}}, Clock: Clock{CalendarDays: 1}, TimeZone: "America/Chicago"}
	texasLabs := func(tz string) Config {
		return Config{
			TimeZone:              tz,
			FacilityJurisdictions: map[string]string{"TXLAB": "US-TX", "ELPASO": "US-TX"},
			FacilityTimeZones:     map[string]string{"ELPASO": "America/Denver"},
			Jurisdictions:         map[string]JurisdictionRule{"US-TX": tx},
		}
	}
	tests := []struct {
		name      string
		cfg       Config
		facility  string
		finalised string // RFC 3339 with the sender's offset
		notBefore string // exact expected instant, UTC
		zone      string
		zoneFrom  string
	}{
		{
			// The case of issue 12: Monday 20:00 Central on an Eastern
			// instance. Eastern's Monday ends an hour earlier, but the
			// Texas day does not: Thursday 00:00 Central.
			name: "late evening Central on an Eastern instance", cfg: texasLabs("America/New_York"), facility: "TXLAB",
			finalised: "2026-12-07T20:00:00-06:00", notBefore: "2026-12-10T06:00:00Z",
			zone: "America/Chicago", zoneFrom: "preset US-TX-OCC-159.0062",
		},
		{
			name: "late evening Central on a UTC instance", cfg: texasLabs(""), facility: "TXLAB",
			finalised: "2026-12-07T20:00:00-06:00", notBefore: "2026-12-10T06:00:00Z",
			zone: "America/Chicago", zoneFrom: "preset US-TX-OCC-159.0062",
		},
		{
			// 10:00 Central is 16:00Z: a UTC count would release at
			// Thursday 00:00Z, Wednesday 18:00 Central, six hours early.
			name: "morning Central on a UTC instance", cfg: texasLabs(""), facility: "TXLAB",
			finalised: "2026-12-07T10:00:00-06:00", notBefore: "2026-12-10T06:00:00Z",
			zone: "America/Chicago", zoneFrom: "preset US-TX-OCC-159.0062",
		},
		{
			// Spring forward (Sunday 2026-03-08 02:00 Central): Friday's
			// third day starts at midnight CDT, an hour earlier in UTC.
			name: "third day across spring forward", cfg: texasLabs("America/New_York"), facility: "TXLAB",
			finalised: "2026-03-06T20:00:00-06:00", notBefore: "2026-03-09T05:00:00Z",
			zone: "America/Chicago", zoneFrom: "preset US-TX-OCC-159.0062",
		},
		{
			// Fall back (Sunday 2026-11-01 02:00 Central): Friday's third
			// day starts at midnight CST, an hour later in UTC.
			name: "third day across fall back", cfg: texasLabs("America/New_York"), facility: "TXLAB",
			finalised: "2026-10-30T20:00:00-05:00", notBefore: "2026-11-02T06:00:00Z",
			zone: "America/Chicago", zoneFrom: "preset US-TX-OCC-159.0062",
		},
		{
			// 23:30 Mountain on Monday is already Tuesday in Central: El
			// Paso's own zone keeps Monday, so Thursday 00:00 Mountain.
			name: "El Paso in Mountain time", cfg: texasLabs("America/New_York"), facility: "ELPASO",
			finalised: "2026-12-07T23:30:00-07:00", notBefore: "2026-12-10T07:00:00Z",
			zone: "America/Denver", zoneFrom: "facility_time_zones.ELPASO",
		},
		{
			// The same instant from a Central facility is a Tuesday
			// finalisation: Friday 00:00 Central.
			name: "same instant from a Central facility", cfg: texasLabs("America/New_York"), facility: "TXLAB",
			finalised: "2026-12-07T23:30:00-07:00", notBefore: "2026-12-11T06:00:00Z",
			zone: "America/Chicago", zoneFrom: "preset US-TX-OCC-159.0062",
		},
		{
			// One calendar day from Saturday 02:30 lands in the spring gap
			// (02:30 does not exist on Sunday): moved forward to 03:30 CDT.
			name: "calendar day into the spring gap", facility: "LAB",
			cfg:       Config{Jurisdiction: "X", Jurisdictions: map[string]JurisdictionRule{"X": day1}},
			finalised: "2026-03-07T02:30:00-06:00", notBefore: "2026-03-08T08:30:00Z",
			zone: "America/Chicago", zoneFrom: "jurisdictions.X.time_zone",
		},
		{
			// One calendar day from Saturday 01:30 CDT is Sunday 01:30,
			// which occurs twice: the first (CDT), 24 hours later.
			name: "calendar day into the autumn overlap", facility: "LAB",
			cfg:       Config{Jurisdiction: "X", Jurisdictions: map[string]JurisdictionRule{"X": day1}},
			finalised: "2026-10-31T01:30:00-05:00", notBefore: "2026-11-01T06:30:00Z",
			zone: "America/Chicago", zoneFrom: "jurisdictions.X.time_zone",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := NewEngine(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			fin := utc(tt.finalised)
			d := e.Decide(Input{
				Report:         rep(final(fin), received(fin.Add(time.Minute))),
				Classification: cls(TagPathology, TagMalignancy), Facility: tt.facility, Now: fin.Add(time.Minute),
			})
			if d.Action != ActionHold || len(d.Bases) != 1 || d.Bases[0].Kind != BasisStateLaw {
				t.Fatalf("decision = %s %v, want one state-law hold", d.Action, basesSummary(d))
			}
			b := d.Bases[0]
			want := utc(tt.notBefore)
			if !b.Deadline.Equal(want) {
				t.Errorf("deadline = %s, want %s", b.Deadline.UTC().Format(time.RFC3339), tt.notBefore)
			}
			if b.TimeZone != tt.zone || b.TimeZoneFrom != tt.zoneFrom {
				t.Errorf("zone = %q from %q, want %q from %q", b.TimeZone, b.TimeZoneFrom, tt.zone, tt.zoneFrom)
			}
		})
	}
}

// TestSenderFlagFacilityZone checks that a sender flag's business days are
// counted in the sending facility's zone, not the instance's.
func TestSenderFlagFacilityZone(t *testing.T) {
	tests := []struct {
		name, tz string
		zones    map[string]string
		deadline string
		zoneFrom string
	}{
		{
			// Friday 23:30 Central is a business day there: one business
			// day later is Monday 23:30 Central.
			name: "facility zone", tz: "America/New_York", zones: map[string]string{"TXLAB": "America/Chicago"},
			deadline: "2026-12-15T05:30:00Z", zoneFrom: "facility_time_zones.TXLAB",
		},
		{
			// Without a facility zone the same instant is Saturday 00:30
			// Eastern: the count starts Monday 00:00 and ends Tuesday 00:00
			// Eastern.
			name: "instance zone", tz: "America/New_York",
			deadline: "2026-12-15T05:00:00Z", zoneFrom: "policy.time_zone",
		},
		{
			name: "UTC default", deadline: "2026-12-15T00:00:00Z", zoneFrom: "UTC default: policy.time_zone not set",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := NewEngine(Config{TimeZone: tt.tz, FacilityTimeZones: tt.zones})
			if err != nil {
				t.Fatal(err)
			}
			fin := utc("2026-12-11T23:30:00-06:00")
			d := e.Decide(Input{Report: rep(final(fin), received(fin), flag("SID")), Classification: cls(), Facility: "TXLAB", Now: fin})
			if len(d.Bases) != 1 || d.Bases[0].Kind != BasisSenderFlag {
				t.Fatalf("bases = %v, want one sender-flag basis", basesSummary(d))
			}
			if got := d.Bases[0].Deadline.UTC().Format(time.RFC3339); got != tt.deadline || d.Bases[0].TimeZoneFrom != tt.zoneFrom {
				t.Errorf("deadline %s from %q, want %s from %q", got, d.Bases[0].TimeZoneFrom, tt.deadline, tt.zoneFrom)
			}
		})
	}
}

// TestStateLawStatement checks that the decision says plainly whether a
// state-law rule applies and, if not, why.
func TestStateLawStatement(t *testing.T) {
	cfg := Config{
		Jurisdiction:          "US-KY",
		FacilityJurisdictions: map[string]string{"NYLAB": "US-NY"},
		Jurisdictions: map[string]JurisdictionRule{
			"US-KY": {Statute: "US-KY-KRS-333.152"},
			"US-NY": {NoStateLaw: true, Note: "counsel 2026-11"},
		},
	}
	e, err := NewEngine(cfg)
	if err != nil {
		t.Fatal(err)
	}
	noDefault, err := NewEngine(Config{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		e        *Engine
		facility string
		tags     []string
		r        *Report
		want     string
	}{
		{"rule applies", e, "KYLAB", []string{TagPathology, TagMalignancy}, rep(),
			"the US-KY rule applies (Ky. Rev. Stat. § 333.152(2)): 72 hours after finalisation"},
		{"rule does not cover the result", e, "KYLAB", []string{TagPathology}, rep(),
			"no state-law rule applies: the US-KY rule (Ky. Rev. Stat. § 333.152(2)) covers results tagged [pathology+malignancy], [pathology+suspected-malignancy], [cytology+malignancy], [cytology+suspected-malignancy], [imaging+malignancy], [imaging+suspected-malignancy], [genetic], and this result has none of those combinations"},
		{"jurisdiction without state law", e, "NYLAB", []string{TagPathology, TagMalignancy}, rep(),
			"no state-law rule applies: jurisdiction US-NY is configured with no_state_law (counsel 2026-11)"},
		{"no jurisdiction", noDefault, "LAB9", []string{TagPathology, TagMalignancy}, rep(),
			`no state-law rule applies: no jurisdiction is configured for this result (sending facility "LAB9" is not in policy.facility_jurisdictions and policy.jurisdiction is not set)`},
		{"report names a jurisdiction without a rule", e, "KYLAB", []string{TagPathology, TagMalignancy}, rep(jur("US-OH")),
			"no state-law rule applies: jurisdiction US-OH has no rule in policy.jurisdictions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := tt.e.Decide(Input{Report: tt.r, Classification: cls(tt.tags...), Facility: tt.facility, Now: tRecv})
			if d.StateLaw != tt.want {
				t.Errorf("StateLaw\n got: %s\nwant: %s", d.StateLaw, tt.want)
			}
			if strings.HasPrefix(tt.want, "no state-law") == (len(d.Bases) > 0 && d.Bases[0].Kind == BasisStateLaw) {
				t.Errorf("bases %v disagree with the statement", basesSummary(d))
			}
		})
	}
}
