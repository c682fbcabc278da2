package hl7

import (
	"fmt"
	"strings"
)

// Tree is an annotated, JSON-friendly view of a message for display
// (resultgate inspect): every segment with its non-empty fields, each with its
// standard number, name where known, unescaped value and, for composite or
// repeating fields, the parts.
type Tree struct {
	ControlID   string        `json:"control_id"`
	MessageType string        `json:"message_type"`
	Version     string        `json:"version,omitempty"`
	Charset     string        `json:"charset"`
	Segments    []SegmentNode `json:"segments"`
}

// SegmentNode is one segment in a Tree.
type SegmentNode struct {
	Name       string      `json:"name"`
	Index      int         `json:"index"`      // 0-based position in the message
	Occurrence int         `json:"occurrence"` // 1-based among segments with this name
	Fields     []FieldNode `json:"fields,omitempty"`
}

// FieldNode is one non-empty field (or one repetition of it) in a Tree.
type FieldNode struct {
	Number     int             `json:"number"`
	Repetition int             `json:"repetition,omitempty"` // set (1-based) only when the field repeats
	Name       string          `json:"name,omitempty"`
	Value      string          `json:"value"` // unescaped (as Field.Value)
	Null       bool            `json:"null,omitempty"`
	Components []ComponentNode `json:"components,omitempty"` // only when there is more than one
}

// ComponentNode is one non-empty component of a FieldNode.
type ComponentNode struct {
	Number        int      `json:"number"`
	Value         string   `json:"value"`
	Subcomponents []string `json:"subcomponents,omitempty"` // only when there is more than one
}

// Describe builds the annotated tree of m.
func Describe(m *Message) Tree {
	t := Tree{ControlID: m.ControlID(), Version: m.Version(), Charset: m.charset}
	code, ev, st := m.Type()
	t.MessageType = MessageType{code, ev, st}.String()
	for i := range m.segs {
		s := &m.segs[i]
		sn := SegmentNode{Name: s.Name(), Index: int(s.index), Occurrence: int(s.occurrence)}
		for n := 1; n <= s.NumFields(); n++ {
			f := s.Field(n)
			if f.IsEmpty() {
				continue
			}
			reps := f.Reps()
			for r, rf := range f.AllReps() {
				if rf.IsEmpty() {
					continue
				}
				fn := FieldNode{Number: n, Name: FieldName(sn.Name, n), Value: rf.Value(), Null: rf.IsNull()}
				if reps > 1 {
					fn.Repetition = r
				}
				if nc := rf.Components(); nc > 1 && !rf.literal() {
					for c, cf := range rf.AllComponents() {
						if cf.IsEmpty() {
							continue
						}
						cn := ComponentNode{Number: c, Value: cf.Value()}
						if ns := cf.Subcomponents(1); ns > 1 {
							cn.Subcomponents = make([]string, 0, ns)
							for _, sf := range cf.AllSubcomponents() {
								cn.Subcomponents = append(cn.Subcomponents, sf.Value())
							}
						}
						fn.Components = append(fn.Components, cn)
					}
				}
				sn.Fields = append(sn.Fields, fn)
			}
		}
		t.Segments = append(t.Segments, sn)
	}
	return t
}

// String renders the tree as indented text, one line per field and component:
//
//	MSH (1)
//	  MSH-9 Message Type: ORU^R01^ORU_R01
//	    .1 ORU
//
// Values are shown with line breaks as "\n" so each stays on one line.
func (t Tree) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s (control ID %s, version %s, %s)\n", "message", t.MessageType, t.ControlID, t.Version, t.Charset)
	for _, s := range t.Segments {
		fmt.Fprintf(&b, "%s (%d)\n", s.Name, s.Occurrence)
		for _, f := range s.Fields {
			label := fmt.Sprintf("%s-%d", s.Name, f.Number)
			if f.Repetition > 0 {
				label += fmt.Sprintf("(%d)", f.Repetition)
			}
			if f.Name != "" {
				label += " " + f.Name
			}
			v := oneLine(f.Value)
			if f.Null {
				v = `"" (null)`
			}
			fmt.Fprintf(&b, "  %s: %s\n", label, v)
			for _, c := range f.Components {
				fmt.Fprintf(&b, "    .%d %s\n", c.Number, oneLine(c.Value))
				for k, sc := range c.Subcomponents {
					if sc != "" {
						fmt.Fprintf(&b, "      .%d.%d %s\n", c.Number, k+1, oneLine(sc))
					}
				}
			}
		}
	}
	return b.String()
}

func oneLine(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	return strings.NewReplacer("\r", `\r`, "\n", `\n`).Replace(s)
}
