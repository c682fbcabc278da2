package hold

import (
	"regexp"
	"strings"
	"testing"
)

func TestPatientKey(t *testing.T) {
	secret := []byte("test-secret")
	a := PatientKey(secret, PatientIdentity("123456", "HOSP"))
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(a) {
		t.Fatalf("PatientKey = %q, want 32 lowercase hex", a)
	}
	if strings.Contains(a, "123456") {
		t.Fatalf("PatientKey %q contains the identifier", a)
	}
	if b := PatientKey(secret, PatientIdentity("123456", "HOSP")); a != b {
		t.Errorf("PatientKey not deterministic: %q != %q", a, b)
	}
	if b := PatientKey(secret, PatientIdentity("123456", "OTHER")); a == b {
		t.Error("same MRN from another assigning authority gives the same key")
	}
	if b := PatientKey([]byte("other-secret"), PatientIdentity("123456", "HOSP")); a == b {
		t.Error("another secret gives the same key")
	}
	// The separator keeps ("12","3456") apart from ("123","456").
	if PatientIdentity("12", "3456") == PatientIdentity("123", "456") {
		t.Error("PatientIdentity ambiguous")
	}
	if got := PatientKey(secret, ""); got != "" {
		t.Errorf("PatientKey of empty pid = %q, want empty", got)
	}
}

func TestPartition(t *testing.T) {
	secret := []byte("s")
	tests := []struct {
		name string
		key  string
		n    int
		re   string
	}{
		{"default 16", PatientKey(secret, "1"), 0, `^p(0\d|1[0-5])$`},
		{"n 4", PatientKey(secret, "1"), 4, `^p0[0-3]$`},
		{"n 1000 three digits", PatientKey(secret, "1"), 1000, `^p\d{3}$`},
		{"no patient", "", 16, `^p00$`},
		{"not a hash", "abc", 16, `^p(0\d|1[0-5])$`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Partition(tt.key, tt.n)
			if !regexp.MustCompile(tt.re).MatchString(got) {
				t.Errorf("Partition(%q, %d) = %q, want match %s", tt.key, tt.n, got, tt.re)
			}
		})
	}
	if Partition("", 16) != NoPatientPartition {
		t.Error("no-patient partition mismatch")
	}
	// Keys spread over every partition.
	seen := map[string]bool{}
	for i := range 2000 {
		seen[Partition(PatientKey(secret, PatientIdentity(strings.Repeat("9", i%7+1)+string(rune('a'+i%26)), "A", string(rune(i)))), 16)] = true
	}
	if len(seen) != 16 {
		t.Errorf("2000 keys hit %d of 16 partitions", len(seen))
	}
}

func TestPatientIdentityTrailingEmpty(t *testing.T) {
	if PatientIdentity("1", "HOSP") != PatientIdentity("1", "HOSP", "", "") {
		t.Error("trailing empty authority parts change the identity")
	}
	if PatientIdentity("1", "", "2.16.840") == PatientIdentity("1", "2.16.840") {
		t.Error("namespace and universal ID confused")
	}
}

// TestOrderKey: an order is its issuer and filler number; the legacy key is
// the filler number's key as releases before 2026-12 computed it (the value
// below is the old OrderKey("FLNU4") under this secret), so data stored then
// is still found.
func TestOrderKey(t *testing.T) {
	secret := []byte("test-secret-0123456789")
	if got, want := LegacyOrderKey(secret, "FLNU4"), "o50b5495be62b8fa2e13caefc"; got != want {
		t.Fatalf("LegacyOrderKey = %s, want the pre-issuer key %s", got, want)
	}
	a := OrderKey(secret, "PATHSYS", "FLNU4")
	for _, c := range []struct {
		name, issuer, filler string
		same                 bool
	}{
		{"same order", "PATHSYS", "FLNU4", true},
		{"issuer case and spaces", " pathsys ", "FLNU4", true},
		{"another issuer", "OTHERLAB", "FLNU4", false},
		{"another filler", "PATHSYS", "FLNU5", false},
		{"no issuer", "", "FLNU4", false},
		{"separator kept", "PATHSY", "SFLNU4", false},
	} {
		if got := OrderKey(secret, c.issuer, c.filler); (got == a) != c.same {
			t.Errorf("%s: OrderKey(%q, %q) = %s, key of PATHSYS FLNU4 %s", c.name, c.issuer, c.filler, got, a)
		}
	}
	if a == LegacyOrderKey(secret, "FLNU4") {
		t.Error("the issuer key equals the legacy key")
	}
	if OrderKey(secret, "PATHSYS", "") != "" || LegacyOrderKey(secret, "") != "" {
		t.Error("an empty filler number has a key")
	}
	if !regexp.MustCompile(`^o[0-9a-f]{24}$`).MatchString(a) {
		t.Errorf("OrderKey = %q, want o + 24 hex", a)
	}
}

// TestDeterminationCovers: an active determination covers its patient, or
// any patient when it names none; an ended one covers nobody.
func TestDeterminationCovers(t *testing.T) {
	for _, c := range []struct {
		name string
		d    Determination
		key  string
		want bool
	}{
		{"its patient", Determination{PatientKey: "p1", State: DeterminationActive}, "p1", true},
		{"another patient", Determination{PatientKey: "p1", State: DeterminationActive}, "p2", false},
		{"no patient named", Determination{State: DeterminationActive}, "p2", true},
		{"legacy, no state", Determination{}, "p2", true},
		{"withdrawn", Determination{PatientKey: "p1", State: DeterminationWithdrawn}, "p1", false},
		{"released", Determination{State: DeterminationReleased}, "p1", false},
	} {
		if got := c.d.Covers(c.key); got != c.want {
			t.Errorf("%s: Covers = %v, want %v", c.name, got, c.want)
		}
	}
}
