// Package hostile builds adversarial HL7 v2 messages for tests, fuzz seeds and
// benchmarks: valid ORU^R01 results in which one field the code reads (PID-3,
// PID-5, OBR-16, OBX-5, OBX-8, NTE-3, MSH-18, ...) or the segment list is
// inflated to a chosen size with repetitions, components, subcomponents,
// escape sequences, segments or lines. Each shape targets a loop that once
// rescanned its input on every step; work on any of them must stay linear in
// the message's size (DESIGN.md, non-negotiable 12).
//
// The data is synthetic: no real patient, provider or facility.
package hostile

import (
	"bytes"
	"strings"
)

// A Shape is one adversarial message layout: a template whose hole ("{}")
// is filled with Unit repeated until the message reaches the requested size.
type Shape struct {
	// Name identifies the shape in test and benchmark names.
	Name string
	// Field names what the unit inflates, for failure messages.
	Field string
	// Unit is the text repeated into the hole.
	Unit string
	// Template is the whole message, segments ended by CR, with one "{}".
	Template string
}

// msh is the header of every shape but the MSH ones.
const msh = "MSH|^~\\&|LAB|HOSP|PORTAL|HOSP|20260101120000||ORU^R01^ORU_R01|CTRL-1|P|2.5.1\r"

// Segments shared by the templates (synthetic patient and order).
const (
	pid = "PID|1||MRN0001^^^HOSP^MR||TESTPATIENT^ALEX||19700101|U\r"
	orc = "ORC|RE|PL1|FI1|||||||||DR1^PROVIDER^PAT\r"
	obr = "OBR|1|PL1|FI1|88304^Surgical pathology^CPT4|||20260101110000|||||||||DR1^PROVIDER^PAT||||||20260101115000|||F\r"
	obx = "OBX|1|TX|22634-0^Pathology report^LN||Invasive ductal carcinoma.||||||F\r"
	nte = "NTE|1|L|Reviewed.\r"
)

// Shapes returns every adversarial shape.
func Shapes() []Shape {
	return []Shape{
		{Name: "PID3-empty-reps", Field: "PID-3 repetitions (~)", Unit: "~",
			Template: msh + "PID|1||{}MRN0001^^^HOSP^MR||TESTPATIENT^ALEX||19700101|U\r" + orc + obr + obx + nte},
		{Name: "PID3-reps", Field: "PID-3 repetitions without MR", Unit: "ID1^^^AUTH^PI~",
			Template: msh + "PID|1||{}MRN0001^^^HOSP^MR||TESTPATIENT^ALEX||19700101|U\r" + orc + obr + obx + nte},
		{Name: "PID3-components", Field: "PID-3 components (^)", Unit: "^",
			Template: msh + "PID|1||MRN0001^^^HOSP^MR{}||TESTPATIENT^ALEX||19700101|U\r" + orc + obr + obx + nte},
		{Name: "PID3-subcomponents", Field: "PID-3.4 subcomponents (&)", Unit: "&",
			Template: msh + "PID|1||MRN0001^^^HOSP{}^MR||TESTPATIENT^ALEX||19700101|U\r" + orc + obr + obx + nte},
		{Name: "PID5-reps", Field: "PID-5 repetitions", Unit: "TESTPATIENT^ALEX^^^^^L~",
			Template: msh + "PID|1||MRN0001^^^HOSP^MR||{}TESTPATIENT^ALEX||19700101|U|||1 MAIN ST^^TOWN~{}\r" + orc + obr + obx + nte},
		{Name: "PID11-reps", Field: "PID-11 and PID-10 repetitions", Unit: "1 MAIN ST^^TOWN^ST^00000~",
			Template: msh + "PID|1||MRN0001^^^HOSP^MR||TESTPATIENT^ALEX||19700101|U||2106-3^White^CDCREC~{}|{}\r" + orc + obr + obx + nte},
		{Name: "MSH18-reps", Field: "MSH-18 repetitions", Unit: "~",
			Template: "MSH|^~\\&|LAB|HOSP|PORTAL|HOSP|20260101120000||ORU^R01^ORU_R01|CTRL-1|P|2.5.1||||||{}UNICODE UTF-8\r" + pid + orc + obr + obx + nte},
		{Name: "MSH10-long", Field: "MSH-10 control ID", Unit: "C",
			Template: "MSH|^~\\&|LAB|HOSP|PORTAL|HOSP|20260101120000||ORU^R01^ORU_R01|{}|P|2.5.1\r" + pid + orc + obr + obx + nte},
		{Name: "MSH9-components", Field: "MSH-9 components", Unit: "^",
			Template: "MSH|^~\\&|LAB|HOSP|PORTAL|HOSP|20260101120000||ORU^R01^ORU_R01{}|CTRL-1|P|2.5.1\r" + pid + orc + obr + obx + nte},
		{Name: "MSH4-subcomponents", Field: "MSH-4 subcomponents", Unit: "&",
			Template: "MSH|^~\\&|LAB|HOSP{}|PORTAL|HOSP|20260101120000||ORU^R01^ORU_R01|CTRL-1|P|2.5.1\r" + pid + orc + obr + obx + nte},
		{Name: "OBR-reps", Field: "OBR-16, OBR-28 and ORC-12 repetitions", Unit: "DR9^OTHER^PAT~",
			Template: msh + pid + "ORC|RE|PL1|FI1|||||||||{}DR1^PROVIDER^PAT\r" +
				"OBR|1|PL1|FI1|88304^Surgical pathology^CPT4|||20260101110000|||||||||{}DR1^PROVIDER^PAT||||||20260101115000|||F|||{}DR2^COPY^PAT\r" + obx + nte},
		{Name: "OBR4-components", Field: "OBR-4 and OBR-32 components", Unit: "^&",
			Template: msh + pid + orc + "OBR|1|PL1|FI1|88304^Surgical pathology^CPT4{}|||20260101110000|||||||||DR1^PROVIDER^PAT||||||20260101115000|||F|||||||DR3&READER{}\r" + obx + nte},
		{Name: "OBX5-text-reps", Field: "OBX-5 text repetitions", Unit: "line~",
			Template: msh + pid + orc + obr + "OBX|1|TX|22634-0^Pathology report^LN||{}Invasive ductal carcinoma.||||||F\r" + nte},
		{Name: "OBX5-coded-reps", Field: "OBX-5 coded repetitions", Unit: "8503/3^Carcinoma^ICDO3~",
			Template: msh + pid + orc + obr + "OBX|1|CWE|59847-4^Histology^LN||{}8500/3^Carcinoma^ICDO3||||||F\r" + nte},
		{Name: "OBX5-numeric-reps", Field: "OBX-5 numeric repetitions", Unit: "1.5~",
			Template: msh + pid + orc + obr + "OBX|1|NM|2345-7^Glucose^LN||{}1.5|mg/dL^^UCUM|1-2|H|||F\r" + nte},
		{Name: "OBX5-components", Field: "OBX-5 components, no value type", Unit: "x^",
			Template: msh + pid + orc + obr + "OBX|1||22634-0^Pathology report^LN||{}end||||||F\r" + nte},
		{Name: "OBX5-subcomponents", Field: "OBX-5 subcomponents", Unit: "x&",
			Template: msh + pid + orc + obr + "OBX|1|CWE|59847-4^Histology^LN||8500/3{}^Carcinoma^ICDO3||||||F\r" + nte},
		{Name: "OBX5-escapes", Field: "OBX-5 escape sequences", Unit: "a\\.br\\\\X0D0A\\\\F\\\\S\\\\T\\\\R\\\\E\\\\H\\\\N\\\\.sp 5\\",
			Template: msh + pid + orc + obr + "OBX|1|FT|22634-0^Pathology report^LN||{}carcinoma||||||F\r" + nte},
		{Name: "OBX5-stray-escapes", Field: "OBX-5 unterminated escapes", Unit: "\\X",
			Template: msh + pid + orc + obr + "OBX|1|TX|22634-0^Pathology report^LN||{}carcinoma||||||F\r" + nte},
		{Name: "OBX8-reps", Field: "OBX-8 repetitions", Unit: "~",
			Template: msh + pid + orc + obr + "OBX|1|NM|2345-7^Glucose^LN||1.5|mg/dL^^UCUM|1-2|{}H|||F\r" + nte},
		{Name: "OBX8-flags", Field: "OBX-8 flag repetitions", Unit: "H~L~",
			Template: msh + pid + orc + obr + "OBX|1|NM|2345-7^Glucose^LN||1.5|mg/dL^^UCUM|1-2|{}A|||F\r" + nte},
		{Name: "OBX3-components", Field: "OBX-3 components and subcomponents", Unit: "^&IMP",
			Template: msh + pid + orc + obr + "OBX|1|TX|22634-0^Pathology report^LN{}||Benign.||||||F\r" + nte},
		{Name: "NTE3-reps", Field: "NTE-3 repetitions", Unit: "note~",
			Template: msh + pid + orc + obr + obx + "NTE|1|L|{}end\r"},
		{Name: "fields", Field: "OBX fields (|)", Unit: "|",
			Template: msh + pid + orc + obr + "OBX|1|TX|22634-0^Pathology report^LN||Benign.||||||F{}\r" + nte},
		{Name: "OBX-segments", Field: "OBX segments", Unit: "OBX|1|NM|2345-7^Glucose^LN||1.5|mg/dL^^UCUM|1-2|H|||F\r",
			Template: msh + pid + orc + obr + "{}" + nte},
		{Name: "NTE-segments", Field: "NTE segments", Unit: "NTE|1|L|n\r",
			Template: msh + pid + orc + obr + obx + "{}"},
		{Name: "OBR-segments", Field: "ORC/OBR/OBX groups", Unit: orc + obr + "OBX|1|ST|X^Y^L||v||||||F\r",
			Template: msh + pid + "{}" + nte},
		{Name: "DG1-segments", Field: "DG1 segments", Unit: "DG1|1||C50.9^Breast cancer^I10\r",
			Template: msh + pid + orc + obr + obx + "{}"},
		{Name: "segment-ids", Field: "distinct Z-segment IDs", Unit: "", // see Message
			Template: msh + pid + orc + obr + obx + "{}"},
		{Name: "lines", Field: "continuation lines", Unit: "x\r",
			Template: msh + pid + orc + obr + "OBX|1|TX|22634-0^Pathology report^LN||carcinoma\r{}||||||F\r" + nte},
	}
}

// Message returns the shape filled to size bytes (a few bytes short when the
// unit does not divide the room left; the template alone when it is already
// as long as size).
func (s Shape) Message(size int) []byte {
	holes := strings.Count(s.Template, "{}")
	room := size - len(s.Template) + 2*holes
	var b bytes.Buffer
	b.Grow(size)
	parts := strings.Split(s.Template, "{}")
	for i, p := range parts {
		b.WriteString(p)
		if i == len(parts)-1 {
			break
		}
		n := room / holes
		if s.Unit == "" {
			writeSegmentIDs(&b, n)
			continue
		}
		if k := n / len(s.Unit); k > 0 {
			b.WriteString(strings.Repeat(s.Unit, k))
		}
	}
	return b.Bytes()
}

// writeSegmentIDs writes n bytes' worth of "ZAB|x\r" segments, each ID new
// until all 36^2 Z-segment IDs are used, then from the start again.
func writeSegmentIDs(b *bytes.Buffer, n int) {
	const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	for i := 0; n >= 6; i++ {
		k := i % (len(chars) * len(chars))
		b.WriteByte('Z')
		b.WriteByte(chars[k/len(chars)])
		b.WriteByte(chars[k%len(chars)])
		b.WriteString("|x\r")
		n -= 6
	}
}
