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
		m, err := hl7.Parse([]byte(raw))
		if err != nil {
			t.Fatal(err)
		}
		r, err := FromHL7(m, time.UTC)
		if err != nil {
			t.Fatal(err)
		}
		if r.PatientID != c.want {
			t.Errorf("PID-3 %q: PatientID %q, want %q", c.pid3, r.PatientID, c.want)
		}
	}
}
