package policy

import (
	"testing"
	"time"

	"github.com/resultgate/resultgate/hl7"
)

// TestFromHL7PatientIDPrefersMR checks that the report's patient identifier is
// the PID-3 medical record number even when another identifier comes first,
// the same identifier the intake partitions by.
func TestFromHL7PatientIDPrefersMR(t *testing.T) {
	cases := []struct {
		pid3, want string
	}{
		{"555-44-3333^^^SSA^SS~MRN77^^^GENHOSP^MR", "MRN77^^^GENHOSP"},
		{"MRN77^^^GENHOSP^MR~555-44-3333^^^SSA^SS", "MRN77^^^GENHOSP"},
		{"ACC9^^^CLINIC^PI~BED2^^^CLINIC^PN", "ACC9^^^CLINIC"},
		{"NOAUTH1", "NOAUTH1"},
	}
	for _, c := range cases {
		raw := "MSH|^~\\&|LAB|HOSP|PORTAL|HOSP|20261101120000||ORU^R01|C1|P|2.5.1\r" +
			"PID|1||" + c.pid3 + "||DOE^JANE\r" +
			"OBR|1||F1|24331-1^Lipid panel^LN\r"
		r := mustReport(t, []byte(raw))
		if r.PatientID != c.want {
			t.Errorf("PID-3 %q: PatientID %q, want %q", c.pid3, r.PatientID, c.want)
		}
	}
}

// TestFromHL7PatientIDMatchesPID checks that FromHL7's direct read of PID-3
// agrees with the typed view's PrimaryIdentifier (the intake's rule too) on
// identifiers with escapes, nulls, empty IDs, PID-2 fallback and authorities
// given only as a universal ID.
func TestFromHL7PatientIDMatchesPID(t *testing.T) {
	cases := []struct{ pid2, pid3 string }{
		{"", "555-44-3333^^^SSA^SS~MRN77^^^GENHOSP^MR"},
		{"", "^^^GENHOSP^MR~X1^^^A&1.2.3&ISO^PI"},
		{"", "X1^^^&1.2.3&ISO^PI~MR\\T\\2^^^H\\S\\1^MR"},
		{"", "X1^^^^mr~X2^^^^MR"},
		{"", "U5^^^&2.16.840.1.113883.19&ISO^PI"},
		{"OLD7^^^LEGACY", ""},
		{"OLD7^^^LEGACY", `""`},
		{"", "~~ID9"},
		{"", ""},
	}
	for _, c := range cases {
		raw := "MSH|^~\\&|LAB|HOSP|PORTAL|HOSP|20261101120000||ORU^R01|C1|P|2.5.1\r" +
			"PID|1|" + c.pid2 + "|" + c.pid3 + "||DOE^JANE\r"
		m, err := hl7.Parse([]byte(raw))
		if err != nil {
			t.Fatal(err)
		}
		p, _ := m.PID()
		want := ""
		if id, ok := p.PrimaryIdentifier(); ok {
			want = id.ID
			if a := id.AssigningAuthority.String(); a != "" {
				want += "^^^" + a
			}
		}
		r, err := FromHL7(m, time.UTC)
		if err != nil {
			t.Fatal(err)
		}
		if r.PatientID != want {
			t.Errorf("PID-2 %q PID-3 %q: PatientID %q, typed view %q", c.pid2, c.pid3, r.PatientID, want)
		}
	}
}

// TestFromHL7JoinedTexts checks that texts joined from repetitions keep their
// own values when several are built for one report (they share a buffer).
func TestFromHL7JoinedTexts(t *testing.T) {
	raw := "MSH|^~\\&|LAB|HOSP|PORTAL|HOSP|20261101120000||ORU^R01|C1|P|2.5.1\r" +
		"PID|1||MRN1^^^H^MR\r" +
		"OBR|1||F1|11529-5^Surgical pathology^LN\r" +
		"NTE|1||order note one~order note two\r" +
		"OBX|1|TX|22634-0^Gross^LN||first~second\r" +
		"NTE|1||obs note A~obs note B\r" +
		"NTE|2||single note\r" +
		"OBX|2|FT|22637-3^Diagnosis^LN||DIAGNOSIS:\\.br\\carcinoma~second line\r" +
		"OBX|3|TX|22638-1^Comments^LN||~~\r"
	r := mustReport(t, []byte(raw))
	o := r.Orders[0]
	got := []string{o.Notes[0].Value, o.Observations[0].Texts[0].Value, o.Observations[0].Notes[0].Value,
		o.Observations[0].Notes[1].Value, o.Observations[1].Texts[0].Value}
	want := []string{"order note one\norder note two", "first\nsecond", "obs note A\nobs note B",
		"single note", "DIAGNOSIS:\ncarcinoma\nsecond line"}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("text %d = %q, want %q", i, got[i], want[i])
		}
	}
	if n := len(o.Observations[2].Texts); n != 0 {
		t.Errorf("OBX 3 (only separators): %d texts, want 0", n)
	}
	if n := len(o.Observations[0].Notes); n != 2 {
		t.Errorf("OBX 1: %d notes, want 2", n)
	}
}

// mustReport parses raw and builds its report (times without an offset in UTC).
func mustReport(tb testing.TB, raw []byte) *Report {
	tb.Helper()
	m, err := hl7.Parse(raw)
	if err != nil {
		tb.Fatal(err)
	}
	r, err := FromHL7(m, time.UTC)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}
