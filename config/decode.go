package config

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Problem is one thing wrong in a configuration file, named in the file's own
// terms: the key as written (mllp.tls.cert_file, holds.retry_backoff[1]) and
// its line, never a Go type.
type Problem struct {
	// Line is the 1-based line of the key in the file; 0 when the key is not
	// in the file (a default value, or a key that is missing).
	Line int
	// Key is the dotted path of the key, with [i] for list items.
	Key string
	// Msg says what is wrong and, where it can, how to fix it.
	Msg string
	// Warning marks a problem that does not stop resultgate from starting
	// but that an operator should read.
	Warning bool

	err error // a sentinel such as ErrUnknownKey, or nil
}

// Error formats the problem as "line N: key: message".
func (p *Problem) Error() string {
	var b strings.Builder
	if p.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", p.Line)
	}
	if p.Key != "" {
		b.WriteString(p.Key + ": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Unwrap returns the problem's sentinel (ErrUnknownKey), if any.
func (p *Problem) Unwrap() error { return p.err }

// Problems is every problem found in one file, in file order. As an error it
// lists them one a line.
type Problems []*Problem

// Error lists the problems, one a line.
func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the problems, so errors.Is finds ErrUnknownKey among them.
func (ps Problems) Unwrap() []error {
	out := make([]error, len(ps))
	for i, p := range ps {
		out[i] = p
	}
	return out
}

// Errors returns the problems that are not warnings.
func (ps Problems) Errors() Problems {
	var out Problems
	for _, p := range ps {
		if !p.Warning {
			out = append(out, p)
		}
	}
	return out
}

// Warnings returns the problems that are warnings.
func (ps Problems) Warnings() Problems {
	var out Problems
	for _, p := range ps {
		if p.Warning {
			out = append(out, p)
		}
	}
	return out
}

// Sort orders the problems by line; problems without a line (keys absent from
// the file) come last, in the order they were found.
func (ps Problems) Sort() {
	sort.SliceStable(ps, func(i, j int) bool {
		a, b := ps[i].Line, ps[j].Line
		if a == 0 || b == 0 {
			return a != 0 && b == 0
		}
		return a < b
	})
}

// Err returns ps as an error, or nil when it holds no error (warnings only).
func (ps Problems) Err() error {
	if len(ps.Errors()) == 0 {
		return nil
	}
	return ps
}

// durationLimit is the largest sane value of a duration key.
type durationLimit struct {
	max time.Duration
	why string
}

const day = 24 * time.Hour

// durationLimits bound the duration keys of the file by key (list items as
// key[]). A value past its bound is a slip of the keyboard (100000h for 100h),
// never a setting anyone means: a reminder 11 years before a deadline, a
// write timeout of a week. Keys not listed are bounded by maxDuration.
var durationLimits = map[string]durationLimit{
	"mllp.read_timeout":                {time.Hour, "a sender that takes longer to send one frame is stuck"},
	"mllp.idle_timeout":                {day, ""},
	"mllp.write_timeout":               {time.Hour, "a peer that reads an ACK more slowly is stuck"},
	"mllp.keepalive":                   {time.Hour, "firewalls drop idle flows after minutes"},
	"intake.duplicate_window":          {7 * day, "JetStream keeps every message ID of the window in memory"},
	"intake.store_timeout":             {5 * time.Minute, "the sender is waiting for its ACK"},
	"holds.scheduler_tick":             {10 * time.Minute, "a deadline fires up to one tick late"},
	"holds.reconcile_every":            {time.Hour, ""},
	"holds.retry_backoff[]":            {time.Hour, ""},
	"holds.ack_wait":                   {time.Hour, ""},
	"forwarder.dial_timeout":           {5 * time.Minute, ""},
	"forwarder.ack_timeout":            {10 * time.Minute, ""},
	"forwarder.retry_backoff.min":      {time.Hour, ""},
	"forwarder.retry_backoff.max":      {day, ""},
	"policy.organisational_policy.max": {365 * day, ""},
}

// maxDuration bounds every duration key that durationLimits does not name:
// no hold, reminder or window of resultgate's lasts longer than a year.
const maxDuration = 365 * day

var indexRe = regexp.MustCompile(`\[\d+\]`)

func limitFor(key string) durationLimit {
	if l, ok := durationLimits[indexRe.ReplaceAllString(key, "[]")]; ok {
		return l
	}
	return durationLimit{max: maxDuration}
}

// FormatDuration writes d as a person would type it in the file: "90s",
// "5m", "36h", "8760h (365 days)".
func FormatDuration(d time.Duration) string {
	if d >= 2*day && d%day == 0 {
		return fmt.Sprintf("%dh (%d days)", d/time.Hour, d/day)
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

var (
	durationType  = reflect.TypeFor[time.Duration]()
	nodeType      = reflect.TypeFor[yaml.Node]()
	unmarshalType = reflect.TypeFor[yaml.Unmarshaler]()
)

// durationer is a duration type of another package (policy.Duration), bounded
// like time.Duration.
type durationer interface{ D() time.Duration }

// decoder decodes a yaml.Node tree into a Go value strictly, collecting every
// problem with its key and line instead of stopping at the first.
type decoder struct {
	problems Problems
	// sections are the top-level keys kept as nodes for their owners
	// (Config.Extra); nil below the top level.
	sections map[string]bool
	// visits counts decoded nodes: aliases can make a small file expand
	// exponentially ("billion laughs"), so decoding stops at maxVisits.
	visits int
}

// maxVisits bounds the nodes one decoding visits, aliases expanded: far more
// than any real configuration holds.
const maxVisits = 1 << 20

// maxProblems bounds the problems one decoding reports: past it, the file is
// not a configuration with typing slips but something else.
const maxProblems = 200

func (d *decoder) add(n *yaml.Node, key, format string, args ...any) *Problem {
	p := &Problem{Key: key, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		p.Line = n.Line
	}
	switch {
	case len(d.problems) < maxProblems:
		d.problems = append(d.problems, p)
	case len(d.problems) == maxProblems:
		d.problems = append(d.problems, &Problem{Line: p.Line, Msg: fmt.Sprintf("more than %d problems: the rest are not listed", maxProblems)})
		d.visits = maxVisits // stop decoding
	}
	return p
}

func join(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

// kindName says what a node holds, in the file's terms.
func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a section of keys"
	case yaml.SequenceNode:
		return "a list"
	default:
		return fmt.Sprintf("%q", n.Value)
	}
}

// decode decodes n into v (addressable) at key.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, key string) {
	d.visits++
	if d.visits == maxVisits {
		d.add(n, key, "too many values once aliases are expanded (more than %d)", maxVisits)
	}
	if d.visits >= maxVisits {
		return
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		// "key:" with no value keeps the default; a pointer becomes nil.
		if v.Kind() == reflect.Pointer {
			v.SetZero()
		}
		return
	}
	t := v.Type()
	switch {
	case t == nodeType:
		v.Set(reflect.ValueOf(*n))
		return
	case t == durationType:
		d.duration(n, v, key)
		return
	case reflect.PointerTo(t).Implements(unmarshalType):
		nv := reflect.New(t)
		if err := n.Decode(nv.Interface()); err != nil {
			d.add(n, key, "%s", lineRe.ReplaceAllString(err.Error(), ""))
			return
		}
		if du, ok := nv.Interface().(durationer); ok {
			if !d.bounded(n, key, du.D(), true) {
				return
			}
		}
		v.Set(nv.Elem())
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		nv := reflect.New(t.Elem())
		if !v.IsNil() {
			nv.Elem().Set(v.Elem())
		}
		d.decode(n, nv.Elem(), key)
		v.Set(nv)
	case reflect.Struct:
		d.structure(n, v, key)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			d.add(n, key, "must be a section of names and values, got %s", kindName(n))
			return
		}
		if v.IsNil() {
			v.Set(reflect.MakeMap(t))
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				d.add(k, key, "names must be plain text")
				continue
			}
			kv := reflect.New(t.Key()).Elem()
			if t.Key().Kind() == reflect.String {
				kv.SetString(k.Value)
			} else {
				d.scalar(k, kv, join(key, k.Value))
			}
			ev := reflect.New(t.Elem()).Elem()
			if old := v.MapIndex(kv); old.IsValid() {
				ev.Set(old)
			}
			d.decode(val, ev, join(key, k.Value))
			v.SetMapIndex(kv, ev)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.add(n, key, "must be a list such as [a, b], got %s", kindName(n))
			return
		}
		s := reflect.MakeSlice(t, len(n.Content), len(n.Content))
		for i, item := range n.Content {
			d.decode(item, s.Index(i), fmt.Sprintf("%s[%d]", key, i))
		}
		v.Set(s)
	case reflect.Interface:
		var x any
		if err := n.Decode(&x); err != nil {
			d.add(n, key, "%s", lineRe.ReplaceAllString(err.Error(), ""))
			return
		}
		if x != nil {
			v.Set(reflect.ValueOf(x))
		}
	default:
		d.scalar(n, v, key)
	}
}

var lineRe = regexp.MustCompile(`^(yaml: )?(line \d+: )?`)

func (d *decoder) scalar(n *yaml.Node, v reflect.Value, key string) {
	if n.Kind != yaml.ScalarNode {
		d.add(n, key, "must be a single value, got %s", kindName(n))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(n.Value)
	case reflect.Bool:
		b, err := strconv.ParseBool(n.Value)
		if err != nil || n.Tag != "!!bool" {
			d.add(n, key, "must be true or false, got %q", n.Value)
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		i, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, v.Type().Bits())
		if err != nil || n.Tag != "!!int" {
			d.add(n, key, "must be a whole number, got %q", n.Value)
			return
		}
		v.SetInt(i)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		u, err := strconv.ParseUint(strings.ReplaceAll(n.Value, "_", ""), 0, v.Type().Bits())
		if err != nil || n.Tag != "!!int" {
			d.add(n, key, "must be a whole number not below 0, got %q", n.Value)
			return
		}
		v.SetUint(u)
	case reflect.Float32, reflect.Float64:
		f, err := strconv.ParseFloat(n.Value, v.Type().Bits())
		if err != nil || (n.Tag != "!!float" && n.Tag != "!!int") {
			d.add(n, key, "must be a number, got %q", n.Value)
			return
		}
		v.SetFloat(f)
	default:
		d.add(n, key, "cannot be set from the file")
	}
}

func (d *decoder) duration(n *yaml.Node, v reflect.Value, key string) {
	if n.Kind != yaml.ScalarNode {
		d.add(n, key, "must be a duration such as 30s, 5m or 24h, got %s", kindName(n))
		return
	}
	dur, err := time.ParseDuration(strings.TrimSpace(n.Value))
	if err != nil {
		if days, derr := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(n.Value), "d")); derr == nil && strings.HasSuffix(n.Value, "d") && days > 0 {
			d.add(n, key, "must be a duration such as 30s, 5m or 24h, got %q (this key takes no days: write %dh)", n.Value, days*24)
			return
		}
		d.add(n, key, "must be a duration such as 30s, 5m or 24h, got %q", n.Value)
		return
	}
	if d.bounded(n, key, dur, false) {
		v.SetInt(int64(dur))
	}
}

// bounded reports whether dur is within its key's sane range, adding a
// problem when it is not. Keys that take days ("14d", policy's) are told
// their bound in days.
func (d *decoder) bounded(n *yaml.Node, key string, dur time.Duration, takesDays bool) bool {
	l := limitFor(key)
	if dur <= l.max {
		return true
	}
	limit := FormatDuration(l.max)
	if takesDays && l.max%day == 0 {
		limit = fmt.Sprintf("%dd", l.max/day)
	}
	msg := fmt.Sprintf("must be at most %s, got %s", limit, n.Value)
	if l.why != "" {
		msg += ": " + l.why
	}
	d.add(n, key, "%s", msg)
	return false
}

// field is one key of a struct in the file.
type field struct {
	index []int
}

// fields returns the keys of struct type t by yaml name, and the index of
// its inline map (Config.Extra), if any.
func fields(t reflect.Type) (map[string]field, []string, []int) {
	m := map[string]field{}
	var names []string
	var inline []int
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if strings.Contains(opts, "inline") {
			if f.Type.Kind() == reflect.Map {
				inline = f.Index
				continue
			}
			sub, subNames, _ := fields(f.Type)
			for k, sf := range sub {
				m[k] = field{index: append(append([]int(nil), f.Index...), sf.index...)}
			}
			names = append(names, subNames...)
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		m[name] = field{index: f.Index}
		names = append(names, name)
	}
	return m, names, inline
}

func (d *decoder) structure(n *yaml.Node, v reflect.Value, key string) {
	if n.Kind != yaml.MappingNode {
		what := "the file"
		if key != "" {
			what = key
		}
		d.add(n, key, "%s must be a section of keys such as %s, got %s", what, exampleKey(v.Type()), kindName(n))
		return
	}
	known, names, inline := fields(v.Type())
	sections := d.sections
	d.sections = nil // only the top level keeps sections
	defer func() { d.sections = sections }()
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if f, ok := known[k.Value]; ok {
			d.decode(val, v.FieldByIndex(f.index), join(key, k.Value))
			continue
		}
		if inline != nil && sections[k.Value] {
			m := v.FieldByIndex(inline)
			if m.IsNil() {
				m.Set(reflect.MakeMap(m.Type()))
			}
			m.SetMapIndex(reflect.ValueOf(k.Value), reflect.ValueOf(*val))
			continue
		}
		all := names
		if inline != nil {
			all = append(append([]string(nil), names...), SectionNames...)
		}
		p := d.add(k, join(key, k.Value), "%s", unknownKeyMsg(key, k.Value, all))
		p.err = ErrUnknownKey
	}
}

func exampleKey(t reflect.Type) string {
	_, names, _ := fields(t)
	if len(names) == 0 {
		return "name: value"
	}
	return names[0] + ": ..."
}

// unknownKeyMsg names the key the writer probably meant, or the keys the
// section takes.
func unknownKeyMsg(section, key string, known []string) string {
	lk := strings.ToLower(key)
	best, bestDist := "", max(3, len(lk)/3+1)
	for _, k := range known {
		if dist := editDistance(lk, k); dist < bestDist {
			best, bestDist = k, dist
		}
	}
	if best == "" {
		// A misspelling that edits too much ("adress" for addr) still
		// starts like the key meant: take the one key sharing the longest
		// prefix, of two letters or more and half the key or more.
		bestLen, ties := 1, 0
		for _, k := range known {
			n := 0
			for n < len(k) && n < len(lk) && k[n] == lk[n] {
				n++
			}
			if 2*n < len(k) {
				continue
			}
			switch {
			case n > bestLen:
				best, bestLen, ties = k, n, 0
			case n == bestLen && best != "":
				ties++
			}
		}
		if ties > 0 {
			best = ""
		}
	}
	if best != "" {
		return fmt.Sprintf("unknown key (did you mean %s?)", join(section, best))
	}
	sorted := append([]string(nil), known...)
	sort.Strings(sorted)
	where := section
	if where == "" {
		where = "the top level"
	}
	return fmt.Sprintf("unknown key (%s takes %s)", where, strings.Join(sorted, ", "))
}

// editDistance is the Levenshtein distance of two short keys.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// syntaxProblem turns a YAML syntax error into a problem with its line.
func syntaxProblem(err error) *Problem {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	p := &Problem{Msg: "not valid YAML: " + msg}
	if m := syntaxLineRe.FindStringSubmatch(msg); m != nil {
		p.Line, _ = strconv.Atoi(m[1])
		p.Msg = "not valid YAML: " + strings.TrimPrefix(msg, m[0])
	}
	return p
}

var syntaxLineRe = regexp.MustCompile(`^line (\d+): `)

// keyRe finds the key at the start of an error line written by a Validate
// method ("holds.max_deliver: must be at least 1, got 0").
var keyRe = regexp.MustCompile(`^([a-z][a-z_]*(?:\.[^:\[\n]+|\[\d+\])*): (.+)$`)

// Locate turns err, as returned by Parse, Validate, the sections' loaders or
// CheckFiles, into problems with the line of each key in the file c was parsed
// from. Problems keep their line; an error line that starts with a key of
// the file ("policy.time_zone: ...") gets that key's line, or its nearest
// enclosing key's when the key itself is absent.
func (c Config) Locate(err error) Problems {
	var out Problems
	var walk func(error)
	walk = func(err error) {
		switch e := err.(type) {
		case nil:
			return
		case *Problem:
			out = append(out, e)
			return
		case Problems:
			for _, p := range e {
				walk(p)
			}
			return
		case interface{ Unwrap() []error }:
			for _, x := range e.Unwrap() {
				walk(x)
			}
			return
		}
		var ps Problems
		if errors.As(err, &ps) {
			walk(ps)
			return
		}
		var p *Problem
		if errors.As(err, &p) {
			out = append(out, p)
			return
		}
		for _, line := range strings.Split(err.Error(), "\n") {
			if line == "" {
				continue
			}
			pr := &Problem{Msg: line}
			if m := keyRe.FindStringSubmatch(line); m != nil && c.isTopKey(m[1]) {
				pr.Key, pr.Msg = m[1], m[2]
				pr.Line = c.LineOf(pr.Key)
			}
			out = append(out, pr)
		}
	}
	walk(err)
	return out
}

func (c Config) isTopKey(key string) bool {
	top, _, _ := strings.Cut(key, ".")
	top, _, _ = strings.Cut(top, "[")
	if isSection(top) {
		return true
	}
	known, _, _ := fields(reflect.TypeFor[Config]())
	_, ok := known[top]
	return ok
}

// LineOf returns the line of key (dotted, with [i] for list items) in the file
// c was parsed from: the key's own line, else that of its nearest enclosing
// key present in the file, else 0.
func (c Config) LineOf(key string) int {
	if c.doc == nil {
		return 0
	}
	n, line := c.doc, 0
	for _, part := range splitKey(key) {
		if n.Kind == yaml.AliasNode && n.Alias != nil {
			n = n.Alias
		}
		var next *yaml.Node
		switch {
		case n.Kind == yaml.MappingNode && !strings.HasPrefix(part, "["):
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == part {
					line, next = n.Content[i].Line, n.Content[i+1]
					break
				}
			}
		case n.Kind == yaml.SequenceNode && strings.HasPrefix(part, "["):
			i, err := strconv.Atoi(strings.Trim(part, "[]"))
			if err == nil && i >= 0 && i < len(n.Content) {
				next = n.Content[i]
				line = next.Line
			}
		}
		if next == nil {
			return line
		}
		n = next
	}
	return line
}

// splitKey splits "a.b[2].c" into "a", "b", "[2]", "c". Map keys that hold a
// dot cannot be told apart from nesting; resultgate's keys hold none.
func splitKey(key string) []string {
	var parts []string
	for _, p := range strings.Split(key, ".") {
		for {
			i := strings.IndexByte(p, '[')
			if i < 0 {
				break
			}
			if i > 0 {
				parts = append(parts, p[:i])
			}
			j := strings.IndexByte(p[i:], ']')
			if j < 0 {
				break
			}
			parts = append(parts, p[i:i+j+1])
			p = p[i+j+1:]
		}
		if p != "" {
			parts = append(parts, p)
		}
	}
	return parts
}
