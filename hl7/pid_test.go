package hl7

import "testing"

// TestPrimaryIdentifierField: the segment-level choice (what the intake and
// the policy read on every message) picks the identifier the typed view's list
// does: MR first, else the first with an ID, PID-2 when PID-3 is empty or null.
func TestPrimaryIdentifierField(t *testing.T) {
	cases := []struct{ pid2, pid3, want string }{
		{"", "555-44-3333^^^SSA^SS~MRN77^^^GENHOSP^MR", "MRN77"},
		{"", "^^^GENHOSP^MR~X1^^^A&1.2.3&ISO^PI", "X1"},
		{"", "X1^^^&1.2.3&ISO^PI~MR\\T\\2^^^H\\S\\1^MR", "MR&2"},
		{"", "X1^^^^mr~X2^^^^MR", "X2"},
		{"OLD7^^^LEGACY", "", "OLD7"},
		{"OLD7^^^LEGACY", `""`, "OLD7"},
		{"", "~~ID9", "ID9"},
		{"", "", ""},
	}
	for _, c := range cases {
		m, err := Parse([]byte("MSH|^~\\&|LAB|HOSP|PORTAL|HOSP|20261101120000||ORU^R01|C1|P|2.5.1\r" +
			"PID|1|" + c.pid2 + "|" + c.pid3 + "||DOE^JANE\r"))
		if err != nil {
			t.Fatal(err)
		}
		p, _ := m.PID()
		got, ok := p.PrimaryIdentifier() // through PrimaryIdentifierField
		list, lok := PID{Identifiers: p.Identifiers}.PrimaryIdentifier()
		if ok != lok || got != list || got.ID != c.want {
			t.Errorf("PID-2 %q PID-3 %q: segment %+v %t, list %+v %t, want ID %q", c.pid2, c.pid3, got, ok, list, lok, c.want)
		}
	}
}
