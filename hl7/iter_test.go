package hl7

import (
	"strings"
	"testing"
)

func TestIterators(t *testing.T) {
	m, err := Parse([]byte("MSH|^~\\&|A|B\rPID|1||1^^^X&Y&Z^MR~~2^C\\S\\D^^&&W~\"\"||\r"))
	if err != nil {
		t.Fatal(err)
	}
	f := m.First("PID").Field(3)
	var reps []string
	for i, r := range f.AllReps() {
		reps = append(reps, strings.Repeat("#", i)+r.Raw())
	}
	if got := strings.Join(reps, " "); got != `#1^^^X&Y&Z^MR ## ###2^C\S\D^^&&W ####""` {
		t.Fatalf("AllReps: %s", got)
	}
	rep3 := f.Rep(3)
	var comps []string
	for c, cf := range rep3.AllComponents() {
		comps = append(comps, strings.Repeat("#", c)+cf.Value())
	}
	if got := strings.Join(comps, " "); got != "#2 ##C^D ### ####&&W" {
		t.Fatalf("AllComponents: %q", got)
	}
	var subs []string
	for _, cf := range f.AllComponents() {
		for k, sf := range cf.AllSubcomponents() {
			subs = append(subs, strings.Repeat("#", k)+sf.Value())
		}
	}
	if got := strings.Join(subs, " "); got != "#1 #X ##Y ###Z #MR" {
		t.Fatalf("AllSubcomponents of every component: %q", got)
	}
	// Breaking out early stops the iteration.
	n := 0
	for range f.AllReps() {
		n++
		break
	}
	for range rep3.AllComponents() {
		n++
		break
	}
	if n != 2 {
		t.Fatalf("break: %d", n)
	}
	// Empty and literal fields.
	for range m.First("PID").Field(4).AllReps() {
		t.Fatal("empty field yielded a repetition")
	}
	for i, r := range m.Segment(0).Field(2).AllReps() {
		if i != 1 || r.Raw() != `^~\&` || r.Value() != `^~\&` {
			t.Fatalf("MSH-2: %d %q", i, r.Raw())
		}
	}
	if v := f.Rep(4).Values(); len(v) != 1 || v[0] != "" {
		t.Fatalf("null repetition: %q", v)
	}
}

// TestContinuationNotesBounded: a message of many short continuation lines
// gets the first 32 notes and one that counts the rest, not a note a line.
func TestContinuationNotesBounded(t *testing.T) {
	m, err := Parse([]byte("MSH|^~\\&|A|B\rOBX|1|TX|C||a\r" + strings.Repeat("x\r", 1000)))
	if err != nil {
		t.Fatal(err)
	}
	notes := m.Notes()
	if len(notes) != maxContNotes+1 || !strings.HasPrefix(notes[len(notes)-1].Text, "968 more lines") {
		t.Fatalf("%d notes, last %q", len(notes), notes[len(notes)-1])
	}
}
