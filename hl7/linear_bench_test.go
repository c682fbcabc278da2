package hl7

import (
	"strconv"
	"strings"
	"testing"
)

// pidWithReps returns a message whose PID-3 has n repetitions without an
// "MR" identifier type, so PrimaryIdentifierField reads every one of them.
func pidWithReps(n int) []byte {
	var b strings.Builder
	b.WriteString("MSH|^~\\&|LAB|HOSP|PORTAL|HOSP|20260101120000||ORU^R01^ORU_R01|C1|P|2.5.1\rPID|1||")
	for i := range n {
		if i > 0 {
			b.WriteByte('~')
		}
		b.WriteString("ID")
		b.WriteString(strconv.Itoa(i))
		b.WriteString("^^^AUTH^PI")
	}
	b.WriteString("||DOE^JANE\r")
	return []byte(b.String())
}

// BenchmarkPrimaryIdentifierField reads the primary identifier of a PID-3
// with 5k to 40k repetitions (issue 15 measured 2.0 s at 40k before the
// repetitions were read in one pass).
func BenchmarkPrimaryIdentifierField(b *testing.B) {
	for _, n := range []int{5000, 10000, 20000, 40000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			m, err := Parse(pidWithReps(n))
			if err != nil {
				b.Fatal(err)
			}
			pid := m.First("PID")
			b.SetBytes(int64(len(pid.Field(3).Raw())))
			b.ReportAllocs()
			for b.Loop() {
				f, ok := PrimaryIdentifierField(pid)
				if !ok || f.Component(1) != "ID0" {
					b.Fatalf("got %q, %v", f.Raw(), ok)
				}
			}
		})
	}
}
