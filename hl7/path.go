package hl7

import (
	"fmt"
	"strconv"
	"strings"
)

// Path addresses a value: segment (with an optional occurrence), field, and
// optionally repetition, component and subcomponent. Zero means "not given"
// (occurrence and repetition then default to the first).
type Path struct {
	Segment    string
	Occurrence int // SEG(n)-F: 1-based occurrence of the segment; 0 = every/first
	Field      int
	Repetition int // F(r): 1-based; 0 = first
	Component  int
	Sub        int
}

// String formats the path as ParsePath reads it.
func (p Path) String() string {
	var b strings.Builder
	b.WriteString(p.Segment)
	if p.Occurrence > 0 {
		fmt.Fprintf(&b, "(%d)", p.Occurrence)
	}
	fmt.Fprintf(&b, "-%d", p.Field)
	if p.Repetition > 0 {
		fmt.Fprintf(&b, "(%d)", p.Repetition)
	}
	if p.Component > 0 {
		fmt.Fprintf(&b, ".%d", p.Component)
		if p.Sub > 0 {
			fmt.Fprintf(&b, ".%d", p.Sub)
		}
	}
	return b.String()
}

// ParsePath reads a path such as "PID-3", "PID-3.1", "PID-3.4.1", "PID-3(2).1" or
// "OBX(2)-5". The segment ID is three upper-case letters or digits; every number
// is 1-based and positive. "PID.3.1" (dot after the segment) is accepted too.
func ParsePath(s string) (Path, error) {
	bad := func(why string) (Path, error) {
		return Path{}, fmt.Errorf("%w %q: %s", ErrBadPath, s, why)
	}
	var p Path
	if len(s) < 5 || !validSegID(s[0], s[1], s[2]) {
		return bad("want SEG-F[(R)][.C[.S]], e.g. PID-3.1")
	}
	p.Segment = s[:3]
	rest := s[3:]
	if strings.HasPrefix(rest, "(") {
		n, r, ok := parenNum(rest)
		if !ok {
			return bad("segment occurrence must be (n) with n >= 1")
		}
		p.Occurrence, rest = n, r
	}
	if rest == "" || (rest[0] != '-' && rest[0] != '.') {
		return bad("want '-' and a field number after the segment ID")
	}
	rest = rest[1:]
	num, rest, ok := leadNum(rest)
	if !ok {
		return bad("field number must be a positive integer")
	}
	p.Field = num
	if strings.HasPrefix(rest, "(") {
		n, r, ok := parenNum(rest)
		if !ok {
			return bad("repetition must be (n) with n >= 1")
		}
		p.Repetition, rest = n, r
	}
	if strings.HasPrefix(rest, ".") {
		num, rest, ok = leadNum(rest[1:])
		if !ok {
			return bad("component number must be a positive integer")
		}
		p.Component = num
		if strings.HasPrefix(rest, ".") {
			num, rest, ok = leadNum(rest[1:])
			if !ok {
				return bad("subcomponent number must be a positive integer")
			}
			p.Sub = num
		}
	}
	if rest != "" {
		return bad(fmt.Sprintf("unexpected %q", rest))
	}
	return p, nil
}

func leadNum(s string) (int, string, bool) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 || i > 6 {
		return 0, s, false
	}
	n, _ := strconv.Atoi(s[:i])
	if n < 1 {
		return 0, s, false
	}
	return n, s[i:], true
}

func parenNum(s string) (int, string, bool) {
	n, rest, ok := leadNum(s[1:])
	if !ok || !strings.HasPrefix(rest, ")") {
		return 0, s, false
	}
	return n, rest[1:], true
}

// Value returns the unescaped value at p in segment s (p.Segment and
// p.Occurrence are not checked): the whole repetition (as Field.Value), a
// component or a subcomponent.
func (s *Segment) Value(p Path) string {
	f := s.Field(p.Field)
	if p.Repetition > 0 {
		f = f.Rep(p.Repetition)
	}
	switch {
	case p.Component == 0:
		return f.Value()
	case p.Sub == 0:
		return f.Component(p.Component)
	default:
		return f.Sub(p.Component, p.Sub)
	}
}

// Get returns the unescaped value at path in the first matching segment (or the
// occurrence the path names). MSH-1 is the field separator and MSH-2 the encoding
// characters, as in the standard. A field, component or repetition that is absent
// reads as ""; a segment that is absent is ErrSegmentNotFound.
func (m *Message) Get(path string) (string, error) {
	p, err := ParsePath(path)
	if err != nil {
		return "", err
	}
	seg := m.First(p.Segment)
	if p.Occurrence > 0 {
		seg = m.Nth(p.Segment, p.Occurrence)
	}
	if seg == nil {
		return "", fmt.Errorf("%s: %w: no %s", path, ErrSegmentNotFound, segOccName(p))
	}
	return seg.Value(p), nil
}

// GetAll returns the value at path for every occurrence of the segment (or only
// the named occurrence), in order; an absent segment gives an empty slice.
func (m *Message) GetAll(path string) ([]string, error) {
	p, err := ParsePath(path)
	if err != nil {
		return nil, err
	}
	var out []string
	for i := range m.segs {
		s := &m.segs[i]
		if s.Name() != p.Segment || (p.Occurrence > 0 && int(s.occurrence) != p.Occurrence) {
			continue
		}
		out = append(out, s.Value(p))
	}
	return out, nil
}

func segOccName(p Path) string {
	if p.Occurrence > 0 {
		return fmt.Sprintf("%s occurrence %d", p.Segment, p.Occurrence)
	}
	return p.Segment + " segment"
}
