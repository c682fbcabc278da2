package pipeline

import (
	"testing"

	"github.com/resultgate/resultgate/hl7"
)

// TestOrderIssuer: the issuer is the filler number's namespace (OBR-3.2,
// else ORC-3.2) or, without one, the sending facility (MSH-4.1), upper-cased.
func TestOrderIssuer(t *testing.T) {
	const msh = "MSH|^~\\&|LIS|SendLab^1.2.3^ISO|PORTAL|HOSP|20260302080000||ORU^R01|C1|P|2.5.1\r"
	for _, c := range []struct {
		name, segs, want string
	}{
		{"OBR-3 namespace", "ORC|RE|P1|F1^orclab\rOBR|1|P1|F1^PathSys\r", "PATHSYS"},
		{"ORC-3 namespace when OBR-3 has none", "ORC|RE|P1|F1^ORCLAB\rOBR|1|P1|F1\r", "ORCLAB"},
		{"ORC-3 when OBR-3 is empty", "ORC|RE|P1|F1^ORCLAB\rOBR|1|P1|\r", "ORCLAB"},
		{"sending facility", "OBR|1|P1|F1\r", "SENDLAB"},
		{"namespace without a number is ignored", "OBR|1|P1|^PATHSYS\r", "SENDLAB"},
	} {
		m, err := hl7.Parse([]byte(msh + c.segs))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := orderIssuer(m); got != c.want {
			t.Errorf("%s: issuer %q, want %q", c.name, got, c.want)
		}
	}
}
