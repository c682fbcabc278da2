package hostile

import "strings"

// Structures returns adversarial documents of about size bytes for the YAML
// and JSON readers (configuration, rule sets, Consents), the counterparts of
// Shapes for targets that do not read HL7: a long flow list, a long block
// list, a mapping with many keys, deep nesting, a long scalar, a long JSON
// array and an object with many members.
func Structures(size int) [][]byte {
	n := max(size/8, 1)
	depth := min(n, 512)
	return [][]byte{
		[]byte("version: x\nlist: [" + strings.Repeat("a, ", n) + "a]\n"),
		[]byte("version: x\nlist:\n" + strings.Repeat("  - a\n", n)),
		[]byte("version: x\n" + keys(n)),
		[]byte("version: x\nnest: " + strings.Repeat("[", depth) + strings.Repeat("]", depth) + "\n"),
		[]byte("version: x\nnest: " + strings.Repeat("{a: ", depth) + "b" + strings.Repeat("}", depth) + "\n"),
		[]byte("version: \"" + strings.Repeat("x", size) + "\"\n"),
		[]byte(`{"resourceType":"Consent","provision":{"provision":[` + strings.TrimSuffix(strings.Repeat(`{"type":"deny"},`, n/2), ",") + `]}}`),
		[]byte(`{"resourceType":"Consent",` + strings.TrimSuffix(strings.Repeat(`"k":1,`, n), ",") + `}`),
	}
}

// keys returns n distinct "kN: v" lines.
func keys(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString("k")
		b.WriteString(itoa(i))
		b.WriteString(": v\n")
	}
	return b.String()
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var d [20]byte
	k := len(d)
	for ; i > 0; i /= 10 {
		k--
		d[k] = byte('0' + i%10)
	}
	return string(d[k:])
}
