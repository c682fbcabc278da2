package hostile

import (
	"bytes"
	"testing"
)

// TestMessageSize: every shape fills to the size asked (within one unit), and
// the filled field holds the unit many times.
func TestMessageSize(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range Shapes() {
		if seen[s.Name] {
			t.Fatalf("shape %s twice", s.Name)
		}
		seen[s.Name] = true
		for _, size := range []int{4 << 10, 1 << 20} {
			m := s.Message(size)
			unit := max(len(s.Unit), 6)
			if len(m) > size || len(m) < size-3*unit {
				t.Errorf("%s at %d: %d bytes", s.Name, size, len(m))
			}
			if !bytes.HasPrefix(m, []byte("MSH|^~\\&|")) || bytes.Contains(m, []byte("{}")) {
				t.Errorf("%s: not a filled message", s.Name)
			}
		}
	}
}
