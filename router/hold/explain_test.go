package hold

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/resultgate/resultgate/policy"
)

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestBasisText(t *testing.T) {
	ny := mustZone(t, "America/New_York")
	// 2026-12-10 06:00 UTC: 00:00 in Chicago (CST), 01:00 in New York (EST).
	dec10 := time.Date(2026, 12, 10, 6, 0, 0, 0, time.UTC)
	dec21 := time.Date(2026, 12, 21, 14, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name string
		b    policy.Basis
		loc  *time.Location
		want string
	}{
		{"patient request until review, site zone", policy.Basis{Kind: policy.BasisPatientRequest, Until: policy.UntilClinicianReview, ReviewEnds: true, Deadline: dec21}, ny,
			"Patient asked to see it after you review it (at the latest Mon 21 Dec, 09:00 EST)"},
		{"patient request until review, no zone configured", policy.Basis{Kind: policy.BasisPatientRequest, Until: policy.UntilClinicianReview, ReviewEnds: true, Deadline: dec21}, nil,
			"Patient asked to see it after you review it (at the latest Mon 21 Dec, 14:00 UTC)"},
		{"patient request elapsed", policy.Basis{Kind: policy.BasisPatientRequest, Until: policy.UntilElapsed, Deadline: dec21}, ny,
			"Patient asked to see it later: not before Mon 21 Dec, 09:00 EST"},
		{"patient request earlier of", policy.Basis{Kind: policy.BasisPatientRequest, Until: policy.UntilEarlierOf, ReviewEnds: true, Deadline: dec10}, ny,
			"Patient asked to see it after you review it or at Thu 10 Dec, 01:00 EST, whichever comes first"},
		{"patient request later of", policy.Basis{Kind: policy.BasisPatientRequest, Until: policy.UntilLaterOf, ReviewEnds: true, NotBefore: dec10, Deadline: dec21}, ny,
			"Patient asked to see it after you review it, and not before Thu 10 Dec, 01:00 EST (at the latest Mon 21 Dec, 09:00 EST)"},
		{"Texas not-before counts in the statute's zone, not the site's", policy.Basis{Kind: policy.BasisStateLaw, Until: policy.UntilNotBefore, NotBefore: dec10, Deadline: dec10,
			Citation: "Tex. Occ. Code § 159.0062", Source: "jurisdiction US-TX (preset US-TX-OCC-159.0062)", TimeZone: "America/Chicago"}, ny,
			"Texas law (Tex. Occ. Code § 159.0062): not before Thu 10 Dec, 00:00 CST"},
		{"Kentucky provider may release earlier", policy.Basis{Kind: policy.BasisStateLaw, Until: policy.UntilEarlierOf, ReviewEnds: true, Deadline: dec10,
			Citation: "Ky. Rev. Stat. § 333.152(2)", Source: "jurisdiction US-KY (preset US-KY-KRS-333.152)"}, ny,
			"Kentucky law (Ky. Rev. Stat. § 333.152(2)): held until Thu 10 Dec, 01:00 EST unless you release it sooner"},
		{"state law elapsed, unnamed jurisdiction", policy.Basis{Kind: policy.BasisStateLaw, Until: policy.UntilElapsed, Deadline: dec10, Source: "jurisdiction XX-1"}, time.UTC,
			"XX-1 law: held until Thu 10 Dec, 06:00 UTC"},
		{"clinician determination", policy.Basis{Kind: policy.BasisClinicianDetermination, Until: policy.UntilClinicianRelease, Deadline: dec21,
			Source: "determination by D001 (clinician) at 2026-12-07T10:00:00Z", Detail: "individual Preventing-Harm determination, harm type physical: patient at risk of self-harm; no review date given: review due 720h after the determination"}, ny,
			"Clinician's determination by D001 that seeing it now could harm the patient: patient at risk of self-harm; held until that clinician (or one covering them) releases it or on-call overrides, review due Mon 21 Dec, 09:00 EST"},
		{"data error", policy.Basis{Kind: policy.BasisDataError, Until: policy.UntilCorrection, Deadline: dec21,
			Detail: "suspected data error: 1 observation(s) deleted or marked wrong (OBX-11 D/W) beside others that are not; awaiting a correction from the sender"}, ny,
			"Possible data error (1 observation(s) deleted or marked wrong (OBX-11 D/W) beside others that are not): waiting for the sender's correction (at the latest Mon 21 Dec, 09:00 EST)"},
		{"sender flag withheld shows the sender's detail", policy.Basis{Kind: policy.BasisSenderFlag, Until: policy.UntilClinicianReview, ReviewEnds: true, Deadline: dec21,
			Source: "OBX-26 SWTH", Detail: "SWTH: withheld until physician release; maximum 720h (a hold never stays open)"}, ny,
			"Sender withheld it: SWTH: withheld until physician release (at the latest Mon 21 Dec, 09:00 EST)"},
		{"sender flag delayed in the facility's zone", policy.Basis{Kind: policy.BasisSenderFlag, Until: policy.UntilElapsed, Deadline: dec10, TimeZone: "America/Los_Angeles",
			Source: "OBX-26 SID", Detail: "SID: share in 1 day regardless of range, shared after 1 business day"}, ny,
			"Sender delayed it: SID: share in 1 day regardless of range, shared after 1 business day (until Wed 9 Dec, 22:00 PST)"},
		{"organisational policy", policy.Basis{Kind: policy.BasisOrganisationalPolicy, Deadline: dec21, Citation: "Policy ONC-7", ComplianceRisk: true}, ny,
			"Organisation's policy (Policy ONC-7), a compliance risk: held until Mon 21 Dec, 09:00 EST"},
		{"unknown kind keeps its code", policy.Basis{Kind: "future-kind", Deadline: dec21}, time.UTC,
			"future-kind (at the latest Mon 21 Dec, 14:00 UTC)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := BasisText(c.b, c.loc); got != c.want {
				t.Errorf("BasisText:\n got %q\nwant %q", got, c.want)
			}
		})
	}
}

func TestBasesTextDeduplicates(t *testing.T) {
	swth := policy.Basis{Kind: policy.BasisSenderFlag, Until: policy.UntilClinicianReview, ReviewEnds: true,
		Deadline: time.Date(2026, 12, 21, 14, 0, 0, 0, time.UTC), Source: "OBX-26 SWTH", Detail: "SWTH: withheld until physician release; maximum 720h"}
	law := policy.Basis{Kind: policy.BasisStateLaw, Until: policy.UntilElapsed, Deadline: time.Date(2026, 12, 10, 6, 0, 0, 0, time.UTC), Source: "jurisdiction US-MT"}
	stored := BasesFromPolicy([]policy.Basis{swth, law, swth})
	got := BasesText(stored, time.UTC)
	want := []string{
		"Sender withheld it: SWTH: withheld until physician release (at the latest Mon 21 Dec, 14:00 UTC)",
		"Montana law: held until Thu 10 Dec, 06:00 UTC",
	}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("BasesText = %q, want %q", got, want)
	}
	// A stored basis without its detail (an old or slim record) still reads.
	slim := []Basis{{Kind: "sender-flag", Detail: json.RawMessage(`{}`)}}
	if got := BasesText(slim, time.UTC); len(got) != 1 || got[0] != "Sender delayed it: flagged by the sending system (OBX-26)" {
		t.Errorf("slim basis: %q", got)
	}
}

func TestLeft(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		d    time.Duration
		want string
	}{
		{-time.Hour, "due"},
		{0, "due"},
		{30 * time.Second, "under a minute"},
		{40 * time.Minute, "40 min"},
		{5*time.Hour + 10*time.Minute, "5 h 10 min"},
		{5 * time.Hour, "5 h"},
		{51 * time.Hour, "2 d 3 h"},
		{335*time.Hour + 59*time.Minute, "13 d 23 h"},
		{48 * time.Hour, "2 d"},
	} {
		if got := Left(now.Add(c.d), now); got != c.want {
			t.Errorf("Left(%s) = %q, want %q", c.d, got, c.want)
		}
	}
}

func TestKindText(t *testing.T) {
	for kind, want := range map[policy.BasisKind]string{
		policy.BasisPatientRequest: "Patient's request", policy.BasisStateLaw: "State law",
		policy.BasisClinicianDetermination: "Clinician's determination (preventing harm)", policy.BasisDataError: "Possible data error",
		policy.BasisSenderFlag: "Sender's flag (OBX-26)", policy.BasisOrganisationalPolicy: "Organisation's policy (compliance risk)",
		"new-kind": "new-kind",
	} {
		if got := KindText(string(kind)); got != want {
			t.Errorf("KindText(%s) = %q, want %q", kind, got, want)
		}
	}
}
