package policy

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"unicode/utf8"
	"unsafe"
)

// History says whether a patient had a malignancy before this report. The
// router backs it with storage; a nil History means no prior malignancy is on
// record.
type History interface {
	PriorMalignancy(patientID string) bool
}

// Classifier tags reports using one compiled rule set. It is safe for
// concurrent use; compile it once with NewClassifier and reuse it.
type Classifier struct {
	rs *RuleSet

	lex       *automaton
	lexGroups []lexGroup
	cats      []category
	abbrevs   []abbrevC
	abbrCtx   abbrevContext

	names      *automaton
	nameGroups []nameGroup

	services map[string][]int // OBR-24 code -> ServiceSections index
	codes    map[string][]codeRef
	ctxCodes map[string]bool // LOINC codes whose OBX text is context

	// loinc and anySys are views of codes (and ctxCodes) for the look-ups
	// every identifier makes, keyed by the code alone: loinc[x] holds
	// codes["LN|"+x] and ctxCodes[x], anySys[x] holds codes["*|"+x]. They
	// answer exactly what the composed keys would (a key of codes that
	// starts with "LN|" is "LN|"+x for exactly one x), without composing a
	// key and hashing it for every identifier.
	loinc  map[string]loincRef
	anySys map[string][]codeRef
	// lnClass is systems["LN"], the system name nearly every OBX-3 carries.
	lnClass string

	systems map[string]string // upper-case system name -> class
	icd10   []rangeC
	icd9    []rangeC
	icdo3   map[byte]string
	snomed  map[string]SNOMEDConcept

	disabled map[string]bool
	abnormal map[string]bool
	affirm   map[string]bool

	maxPreWindow int32 // widest pre-trigger window, to bound the scope walk

	pool sync.Pool
}

type lexGroup struct {
	id        string
	kind      patKind
	tag       string
	layer     string
	context   string
	ctxStatus status
	prior     bool
	window    int
}

type category struct {
	id     string
	system string
	values map[string]string
	prior  map[string]bool
}

type nameGroup struct {
	id       string
	exclude  bool
	tags     []string
	prefix   bool
	service  bool
	requires []string
}

// loincRef is what a LOINC code means to the classifier: its code rules and
// whether its OBX text is a context section.
type loincRef struct {
	refs    []codeRef
	context bool
}

type codeRef struct {
	id      string
	tags    []string
	layer   string
	context bool
}

type rangeC struct {
	id, from, to, tag string
	prior             bool
}

// Coding-system classes.
const (
	sysLOINC  = "LN"
	sysICD10  = "ICD10"
	sysICD9   = "ICD9"
	sysICDO3  = "ICDO3"
	sysSNOMED = "SCT"
)

var loincSystems = []string{"LN", "LNC", "LOINC", "2.16.840.1.113883.6.1", "HTTP://LOINC.ORG"}

// fixedTagOrder is the order of tags in a Classification; other tags follow
// in lexical order.
var fixedTagOrder = []string{TagPathology, TagCytology, TagImaging, TagGenetic, TagTumorMarker, TagMalignancy, TagSuspectedMalignancy, TagNewCancer}

// NewClassifier compiles rs (the lexicon into one automaton, the names into
// another, the codes into maps) once.
func NewClassifier(rs *RuleSet) (*Classifier, error) {
	if rs == nil {
		return nil, fmt.Errorf("%w: nil rule set", ErrRuleSet)
	}
	c := &Classifier{
		rs:       rs,
		services: map[string][]int{},
		codes:    map[string][]codeRef{},
		ctxCodes: map[string]bool{},
		systems:  map[string]string{},
		icdo3:    map[byte]string{},
		snomed:   map[string]SNOMEDConcept{},
		disabled: map[string]bool{},
		abnormal: map[string]bool{},
		affirm:   map[string]bool{},
	}
	// Lexicon and categories.
	var pats []pattern
	index := map[string]int{}
	addPat := func(p pattern) {
		p.wordAtL = isWordByte(p.norm[0])
		p.wordAtR = isWordByte(p.norm[len(p.norm)-1])
		if i, ok := index[p.norm]; ok {
			q := &pats[i]
			if q.roles != 0 && p.roles != 0 {
				if p.roles&roleCtxPre != 0 && q.roles&roleCtxPre == 0 {
					q.ctxGrp = p.group
				}
				q.roles |= p.roles
			}
			return
		}
		index[p.norm] = len(pats)
		pats = append(pats, p)
	}
	for gi, g := range rs.Lexicon {
		k := knownKinds[g.Kind]
		lg := lexGroup{id: g.ID, kind: k, tag: g.Tag, layer: g.Layer, context: g.Context, prior: g.Prior, window: g.Window}
		if lg.layer == "" {
			lg.layer = LayerFreeText
		}
		switch g.Context {
		case "history":
			lg.ctxStatus = stHistory
		case "known":
			lg.ctxStatus = stKnown
		case "family":
			lg.ctxStatus = stFamily
		case "query":
			lg.ctxStatus = stQuery
		case "label":
			lg.ctxStatus = stLabel
		}
		c.lexGroups = append(c.lexGroups, lg)
		for _, ph := range g.Phrases {
			n := normalize(ph)
			if n == "" {
				continue
			}
			p := pattern{kind: k, roles: roleOfKind[k], group: gi, ctxGrp: -1, norm: n}
			if k == kindContextPre {
				p.ctxGrp = gi
			}
			addPat(p)
			// Regular plural of a term ("adenocarcinomas").
			if k == kindTerm && isLetter(n[len(n)-1]) && n[len(n)-1] != 's' && len(n) > 3 {
				addPat(pattern{kind: k, group: gi, ctxGrp: -1, norm: n + "s"})
			}
		}
	}
	for ci, cr := range rs.Categories {
		cat := category{id: cr.ID, system: cr.System, values: map[string]string{}, prior: map[string]bool{}}
		for v, t := range cr.Values {
			cat.values[v] = t
		}
		for _, v := range cr.Prior {
			cat.prior[v] = true
		}
		c.cats = append(c.cats, cat)
		for _, kw := range cr.Keywords {
			if n := normalize(kw); n != "" {
				addPat(pattern{kind: kindCategory, group: ci, ctxGrp: -1, norm: n})
			}
		}
	}
	c.abbrevs, c.abbrCtx = compileAbbreviations(rs, addPat)
	if len(pats) > 0 {
		c.lex = compileAutomaton(pats)
	}
	// Names.
	var npats []pattern
	nindex := map[string]bool{}
	for gi, g := range rs.Names {
		ng := nameGroup{id: g.ID, exclude: g.Kind == "exclude", prefix: g.Prefix, service: g.ServiceOnly || g.Prefix, requires: g.Requires}
		if g.Tag != "" {
			ng.tags = append(ng.tags, g.Tag)
		}
		ng.tags = append(ng.tags, g.Tags...)
		c.nameGroups = append(c.nameGroups, ng)
		k := kindName
		if ng.exclude {
			k = kindExclude
		}
		for _, ph := range g.Phrases {
			n := normalize(ph)
			if n == "" || nindex[n] {
				continue
			}
			nindex[n] = true
			npats = append(npats, pattern{kind: k, group: gi, ctxGrp: -1, norm: n, wordAtL: isWordByte(n[0]), wordAtR: isWordByte(n[len(n)-1])})
		}
	}
	if len(npats) > 0 {
		c.names = compileAutomaton(npats)
	}
	// Codes.
	for i, r := range rs.ServiceSections {
		for _, code := range r.Codes {
			k := strings.ToUpper(strings.TrimSpace(code))
			c.services[k] = append(c.services[k], i)
		}
	}
	for _, s := range loincSystems {
		c.systems[s] = sysLOINC
	}
	for _, s := range rs.Coded.ICD10.Systems {
		c.systems[strings.ToUpper(s)] = sysICD10
	}
	for _, s := range rs.Coded.ICD9.Systems {
		c.systems[strings.ToUpper(s)] = sysICD9
	}
	for _, s := range rs.Coded.ICDO3.Systems {
		c.systems[strings.ToUpper(s)] = sysICDO3
	}
	for _, s := range rs.Coded.SNOMED.Systems {
		c.systems[strings.ToUpper(s)] = sysSNOMED
	}
	for _, r := range rs.Codes {
		sys := strings.ToUpper(strings.TrimSpace(r.System))
		layer := LayerLocalCode
		if c.systems[sys] == sysLOINC {
			sys, layer = sysLOINC, LayerLOINC
		}
		ref := codeRef{id: r.ID, tags: r.Tags, layer: layer, context: r.Section == "context"}
		for _, code := range r.Codes {
			k := sys + "|" + strings.ToUpper(strings.TrimSpace(code))
			c.codes[k] = append(c.codes[k], ref)
		}
	}
	for _, code := range rs.Settings.ContextSections {
		c.ctxCodes[strings.ToUpper(strings.TrimSpace(code))] = true
	}
	c.loinc, c.anySys = map[string]loincRef{}, map[string][]codeRef{}
	for k, refs := range c.codes {
		if x, ok := strings.CutPrefix(k, sysLOINC+"|"); ok {
			c.loinc[x] = loincRef{refs: refs, context: c.ctxCodes[x]}
		}
		if x, ok := strings.CutPrefix(k, "*|"); ok {
			c.anySys[x] = refs
		}
	}
	for x := range c.ctxCodes {
		lr := c.loinc[x]
		lr.context = true
		c.loinc[x] = lr
	}
	c.lnClass = c.systems["LN"]
	for _, r := range rs.Coded.ICD10.Ranges {
		c.icd10 = append(c.icd10, rangeC{id: r.ID, from: normCode(r.From), to: normCode(r.To), tag: r.Tag, prior: r.Prior})
	}
	for _, r := range rs.Coded.ICD9.Ranges {
		c.icd9 = append(c.icd9, rangeC{id: r.ID, from: normCode(r.From), to: normCode(r.To), tag: r.Tag, prior: r.Prior})
	}
	for b, t := range rs.Coded.ICDO3.Behaviours {
		c.icdo3[b[0]] = t
	}
	for _, sc := range rs.Coded.SNOMED.Concepts {
		if sc.Tag == "" {
			sc.Tag = TagMalignancy
		}
		c.snomed[sc.Code] = sc
	}
	for _, t := range rs.Settings.DisabledTags {
		c.disabled[t] = true
	}
	for _, f := range rs.Settings.AbnormalFlags {
		c.abnormal[strings.ToUpper(f)] = true
	}
	for _, v := range rs.Settings.AffirmativeValues {
		c.affirm[strings.ToLower(v)] = true
	}
	c.maxPreWindow = int32(rs.Settings.PreWindow)
	for _, g := range c.lexGroups {
		c.maxPreWindow = max(c.maxPreWindow, int32(g.window))
	}
	c.pool.New = func() any { return &classifyState{} }
	return c, nil
}

// systemClass returns systems[name] (name upper case and trimmed), with
// LOINC's own name answered without a map look-up.
func (c *Classifier) systemClass(name string) string {
	if name == "LN" {
		return c.lnClass
	}
	return c.systems[name]
}

// RuleSet returns the rule set the classifier was compiled from.
func (c *Classifier) RuleSet() *RuleSet { return c.rs }

func isLetter(b byte) bool { return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' }

// tagAcc collects the evidence of one tag.
type tagAcc struct {
	tag string
	ev  []Evidence
}

// pendingName is a name that needs another tag in the same order.
type pendingName struct {
	ev       Evidence
	tags     []string
	requires []string
}

// classifyState is the per-call scratch space, pooled.
type classifyState struct {
	ts         textScratch
	tags       []tagAcc
	suppressed []tagAcc
	prior      bool
	priorEv    []Evidence
	pending    []pendingName
	nameHits   []rawMatch
	max        int
	// strs holds the strings one call composes for its evidence (matches,
	// modifiers). It is never reused: reset drops it, because the strings
	// belong to the caller's Classification.
	strs strArena
	// lower is scratch for lower-casing a short value.
	lower [64]byte
}

// strArena is an append-only buffer that strings are written into, so that
// many strings (a report's joined texts, a classification's composed
// evidence) cost one allocation. Bytes once handed out are never written
// again: appending only writes past the end, and a string that does not fit
// goes to a new array, leaving the old one (and the strings into it)
// untouched.
type strArena struct {
	buf []byte
}

// concat returns a+b+c+d+e.
func (a *strArena) concat(p, q, r, u, v string) string {
	n := len(p) + len(q) + len(r) + len(u) + len(v)
	if n == 0 {
		return ""
	}
	if cap(a.buf)-len(a.buf) < n {
		a.buf = make([]byte, 0, max(n, 256))
	}
	start := len(a.buf)
	a.buf = append(a.buf, p...)
	a.buf = append(a.buf, q...)
	a.buf = append(a.buf, r...)
	a.buf = append(a.buf, u...)
	a.buf = append(a.buf, v...)
	return unsafe.String(&a.buf[start], n)
}

func (s *classifyState) reset(max int) {
	for i := range s.tags {
		s.tags[i].ev = s.tags[i].ev[:0]
	}
	for i := range s.suppressed {
		s.suppressed[i].ev = s.suppressed[i].ev[:0]
	}
	s.prior = false
	s.priorEv = s.priorEv[:0]
	s.pending = s.pending[:0]
	s.max = max
	s.strs.buf = nil
}

func accFor(list *[]tagAcc, tag string) *tagAcc {
	for i := range *list {
		if (*list)[i].tag == tag {
			return &(*list)[i]
		}
	}
	*list = append(*list, tagAcc{tag: tag})
	return &(*list)[len(*list)-1]
}

func (s *classifyState) count(tag string) int {
	for i := range s.tags {
		if s.tags[i].tag == tag {
			return len(s.tags[i].ev)
		}
	}
	return 0
}

func addEv(list *[]tagAcc, tag string, e Evidence, max int) {
	a := accFor(list, tag)
	for i := range a.ev {
		x := &a.ev[i]
		if x.Segment == e.Segment && x.Occurrence == e.Occurrence && x.Field == e.Field && x.Rule == e.Rule && x.Start == e.Start && x.End == e.End && x.Match == e.Match {
			return
		}
	}
	if max > 0 && len(a.ev) >= max {
		return
	}
	a.ev = append(a.ev, e)
}

func (s *classifyState) add(tag string, e Evidence) { addEv(&s.tags, tag, e, s.max) }

func (s *classifyState) suppress(tag string, e Evidence) { addEv(&s.suppressed, tag, e, s.max) }

// Classify tags r. The result is deterministic: tags in a fixed order
// (pathology, cytology, imaging, genetic, tumor-marker, malignancy,
// suspected-malignancy, new-cancer, then others by name), evidence in message
// order. h may be nil.
func (c *Classifier) Classify(r *Report, h History) Classification {
	return c.classify(r, h, nil)
}

// resultBuf is the memory of a pooled Classification: its Tag and Evidence
// arrays.
type resultBuf struct {
	tags []Tag
	evs  []Evidence
}

var resultBufs = sync.Pool{New: func() any { return new(resultBuf) }}

// ClassifyPooled is Classify with the result's Tag and Evidence arrays taken
// from a pool, for a caller that is done with the Classification before its
// next message: release hands the arrays back; call it once, when neither
// the Classification's slices nor anything sharing them (a Decision's basis
// evidence) are used any more. Its strings stay valid after release.
func (c *Classifier) ClassifyPooled(r *Report, h History) (Classification, func()) {
	buf := resultBufs.Get().(*resultBuf)
	return c.classify(r, h, buf), func() { resultBufs.Put(buf) }
}

func (c *Classifier) classify(r *Report, h History, buf *resultBuf) Classification {
	out := Classification{RulesetVersion: c.rs.Version(), Tags: []Tag{}}
	if r == nil {
		return out
	}
	s := c.pool.Get().(*classifyState)
	defer c.release(s)
	s.reset(c.rs.Settings.MaxEvidencePerTag)

	for oi := range r.Orders {
		o := &r.Orders[oi]
		mark := s.count(TagTumorMarker)
		s.pending = s.pending[:0]
		c.serviceSection(s, o)
		c.identifier(s, &o.Service, locOr(o.Service.Loc, o.Loc, "OBR-4"), true)
		for ni := range o.Notes {
			c.text(s, o.Notes[ni].Value, locOr(o.Notes[ni].Loc, Location{Segment: "NTE"}, "NTE-3"), false, field{})
		}
		for bi := range o.Observations {
			c.observation(s, &o.Observations[bi])
		}
		c.reportTitle(s, o)
		// Names that count only beside another tag in the same order.
		for _, p := range s.pending {
			ok := true
			for _, req := range p.requires {
				if req == TagTumorMarker && s.count(TagTumorMarker) > mark {
					continue
				}
				if req != TagTumorMarker && s.count(req) > 0 {
					continue
				}
				ok = false
			}
			if ok {
				for _, t := range p.tags {
					s.add(t, p.ev)
				}
			}
		}
	}
	for di := range r.Diagnoses {
		d := &r.Diagnoses[di]
		c.codedValue(s, d, locOr(d.Loc, Location{Segment: "DG1"}, "DG1-3"), field{diag: true})
	}
	c.finish(s, r, h, &out, buf)
	return out
}

// release returns s to the pool without the strings it composed for the
// caller.
func (c *Classifier) release(s *classifyState) {
	s.strs.buf = nil
	c.pool.Put(s)
}

func locOr(l, parent Location, field string) Location {
	if l.Segment == "" {
		l.Segment = parent.Segment
		l.Occurrence = parent.Occurrence
	}
	if l.Field == "" {
		l.Field = field
	}
	return l
}

func evAt(l Location, rule, layer, match string) Evidence {
	return Evidence{Segment: l.Segment, Occurrence: l.Occurrence, Field: l.Field, Rule: rule, Match: match, Layer: layer}
}

func (c *Classifier) serviceSection(s *classifyState, o *Order) {
	code := strings.ToUpper(strings.TrimSpace(o.ServiceSection))
	if code == "" {
		return
	}
	loc := locOr(o.ServiceSectionLoc, o.Loc, "OBR-24")
	for _, i := range c.services[code] {
		r := &c.rs.ServiceSections[i]
		for _, t := range r.Tags {
			s.add(t, evAt(loc, r.ID, LayerServiceSection, o.ServiceSection))
		}
	}
}

// label returns the display text of an identifier: its text, or its code
// when the code is free text (no system, contains a space or lower case).
func label(cd *Coded) string {
	if cd.Text != "" {
		return cd.Text
	}
	if cd.System == "" && strings.ContainsAny(cd.Code, " abcdefghijklmnopqrstuvwxyz:") {
		return cd.Code
	}
	return ""
}

// identifier applies layer 2 to an OBR-4 or OBX-3 identifier. It reports
// whether the identifier's text is a context section.
func (c *Classifier) identifier(s *classifyState, cd *Coded, loc Location, service bool) (context bool) {
	for i := -1; i < len(cd.Alt); i++ {
		t := cd
		l := loc
		if i >= 0 {
			t = &cd.Alt[i]
			l = locOr(t.Loc, loc, loc.Field)
		}
		code := strings.ToUpper(strings.TrimSpace(t.Code))
		if code == "" {
			continue
		}
		sysName := strings.ToUpper(strings.TrimSpace(t.System))
		sys := c.systemClass(sysName)
		mod := ""
		if sysName == "" && looksLOINC(code) {
			sys, mod = sysLOINC, "system missing: LOINC code shape"
		}
		var refs, anySys []codeRef
		if sys == sysLOINC {
			lr := c.loinc[code]
			refs = lr.refs
			if lr.context {
				context = true
			}
		} else {
			refs, anySys = c.codes[sysName+"|"+code], c.anySys[code]
		}
		for _, ref := range concatRefs(refs, anySys) {
			if ref.context {
				context = true
			}
			for _, tg := range ref.tags {
				e := evAt(l, ref.id, ref.layer, t.Code)
				e.Modifier = mod
				s.add(tg, e)
			}
		}
	}
	// Names in the identifier's texts.
	for i := -1; i < len(cd.Alt); i++ {
		t := cd
		l := loc
		if i >= 0 {
			t = &cd.Alt[i]
			l = locOr(t.Loc, loc, loc.Field)
		}
		c.names1(s, label(t), l, service)
	}
	return context
}

// reportTitle reads the first line of an order's first text value as a
// report title when it looks like one (upper case, at most 80 bytes, e.g.
// "SURGICAL PATHOLOGY REPORT", "CT CHEST WITH CONTRAST"): senders that use
// local codes often put the document type there.
func (c *Classifier) reportTitle(s *classifyState, o *Order) {
	for i := range o.Observations {
		ob := &o.Observations[i]
		if len(ob.Texts) == 0 {
			continue
		}
		t := ob.Texts[0].Value
		start := 0
		for start < len(t) && (t[start] == ' ' || t[start] == '\n' || t[start] == '\r' || t[start] == '\t') {
			start++
		}
		end := start
		for end < len(t) && t[end] != '\n' && t[end] != '\r' {
			end++
		}
		line := t[start:end]
		if start > 0 || line == "" || len(line) > 80 || strings.ContainsAny(line, "abcdefghijklmnopqrstuvwxyz:") {
			return
		}
		loc := locOr(ob.Texts[0].Loc, ob.Loc, "OBX-5")
		before := len(s.pending)
		c.names1(s, line, loc, true)
		s.pending = s.pending[:before]
		return
	}
}

// names1 applies the name rules to one identifier text.
func (c *Classifier) names1(s *classifyState, text string, loc Location, service bool) {
	if text == "" || c.names == nil {
		return
	}
	s.nameHits = c.names.scan(&s.ts.sc, text, s.nameHits[:0])
	if len(s.nameHits) == 0 {
		return
	}
	s.nameHits = selectLongest(s.nameHits)
	var excluded []string
	for _, m := range s.nameHits {
		g := &c.nameGroups[c.names.patterns[m.pat].group]
		if g.exclude {
			excluded = append(excluded, g.tags...)
		}
	}
	for _, m := range s.nameHits {
		g := &c.nameGroups[c.names.patterns[m.pat].group]
		if g.exclude {
			continue
		}
		if g.service && !service || g.prefix && strings.TrimSpace(text[:m.start]) != "" {
			continue
		}
		e := evAt(loc, g.id, LayerServiceName, text[m.start:m.end])
		e.Start, e.End = int(m.start), int(m.end)
		tags := g.tags // shared, read only
		if len(excluded) > 0 {
			tags = nil
			for _, t := range g.tags {
				if !contains(excluded, t) {
					tags = append(tags, t)
				}
			}
		}
		if len(tags) == 0 {
			continue
		}
		if len(g.requires) > 0 {
			s.pending = append(s.pending, pendingName{ev: e, tags: tags, requires: g.requires})
			continue
		}
		for _, t := range tags {
			s.add(t, e)
		}
	}
}

// concatRefs joins two shared slices without writing into either.
func concatRefs(a, b []codeRef) []codeRef {
	switch {
	case len(b) == 0:
		return a
	case len(a) == 0:
		return b
	}
	return append(append(make([]codeRef, 0, len(a)+len(b)), a...), b...)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// looksLOINC reports whether code has the LOINC shape: 1-7 digits, a hyphen,
// one check digit.
func looksLOINC(code string) bool {
	i := strings.IndexByte(code, '-')
	if i < 1 || i > 7 || i != len(code)-2 {
		return false
	}
	return isDigits(code[:i]) && code[i+1] >= '0' && code[i+1] <= '9'
}

func (c *Classifier) observation(s *classifyState, ob *Observation) {
	loc3 := locOr(ob.ID.Loc, ob.Loc, "OBX-3")
	before := s.count(TagTumorMarker)
	context := c.identifier(s, &ob.ID, loc3, false)
	if s.count(TagTumorMarker) > before {
		for _, f := range ob.AbnormalFlags {
			if c.abnormal[strings.ToUpper(strings.TrimSpace(f))] {
				l := ob.Loc
				l.Field = "OBX-8"
				e := evAt(l, "settings.abnormal_flags", LayerLOINC, f)
				e.Modifier = "abnormal tumour-marker result"
				s.add(TagTumorMarker, e)
				break
			}
		}
	}
	loc5 := Location{Segment: ob.Loc.Segment, Occurrence: ob.Loc.Occurrence, Field: "OBX-5"}
	fld := field{id: &ob.ID}
	for i := range ob.Codes {
		c.codedValue(s, &ob.Codes[i], locOr(ob.Codes[i].Loc, loc5, "OBX-5"), fld)
	}
	for i := range ob.Texts {
		c.text(s, ob.Texts[i].Value, locOr(ob.Texts[i].Loc, loc5, "OBX-5"), context, fld)
	}
	// Synoptic label and value: "Invasive carcinoma: present", "BI-RADS category: 4".
	if !context {
		if lbl := label(&ob.ID); lbl != "" {
			val := ""
			if len(ob.Texts) == 1 {
				val = ob.Texts[0].Value
			} else if len(ob.Codes) == 1 {
				val = ob.Codes[0].Code
				if ob.Codes[0].Text != "" && !isCategoryish(val) {
					val = ob.Codes[0].Text
				}
			}
			if val != "" && len(val) <= 64 {
				c.labelValue(s, lbl, val, loc3)
			}
		}
	}
	for i := range ob.Notes {
		c.text(s, ob.Notes[i].Value, locOr(ob.Notes[i].Loc, Location{Segment: "NTE"}, "NTE-3"), false, field{})
	}
}

func isCategoryish(v string) bool { return len(v) <= 4 }

// firstWordLower returns the first word of val, trimmed and lower-cased
// (the text before the first of " ,;:(–-" when that is not at the start).
// For ASCII values of up to len(buf) bytes it lower-cases into buf, and the
// result is valid until buf is written again.
func firstWordLower(buf *[64]byte, val string) string {
	v := strings.TrimSpace(val)
	ascii := len(v) <= len(buf)
	for i := 0; ascii && i < len(v); i++ {
		ascii = v[i] < utf8.RuneSelf
	}
	if !ascii {
		v = strings.ToLower(v)
		if i := strings.IndexAny(v, " ,;:(–-"); i > 0 {
			v = v[:i]
		}
		return v
	}
	// ASCII: lower-casing keeps every byte where it is and the separators
	// are not letters, so cutting first and lowering after is the same.
	if i := strings.IndexAny(v, " ,;:(–-"); i > 0 {
		v = v[:i]
	}
	b := buf[:len(v)]
	for i := 0; i < len(v); i++ {
		c := v[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b[i] = c
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// labelValue handles a synoptic OBX whose OBX-3 text names a finding and
// whose OBX-5 affirms it, or names a category system and OBX-5 holds its value.
func (c *Classifier) labelValue(s *classifyState, lbl, val string, loc Location) {
	if c.affirm[firstWordLower(&s.lower, val)] {
		c.analyze(&s.ts, lbl, false, field{}, func(f finding) {
			if f.cat >= 0 {
				return
			}
			c.emitFinding(s, f, lbl, loc, strings.TrimSpace(val))
		})
		return
	}
	// Category system in the label, value in OBX-5.
	if c.lex == nil {
		return
	}
	ms := c.lex.scan(&s.ts.sc, lbl, s.ts.ms[:0])
	for _, m := range selectLongest(ms) {
		p := &c.lex.patterns[m.pat]
		if p.kind != kindCategory {
			continue
		}
		cv, _ := parseCategoryValue(val, 0)
		cat := &c.cats[p.group]
		tag, ok := cat.values[cv]
		if !ok || tag == TagNone {
			continue
		}
		f := finding{group: -1, cat: p.group, abbr: -1, tag: tag, prior: cat.prior[cv], layer: LayerStructuredCategory, start: int(m.start), end: int(m.end)}
		c.emitFinding(s, f, lbl, loc, strings.TrimSpace(val))
		break
	}
	s.ts.ms = ms[:0]
}

// textChunk bounds the text analysed at once, so the scratch space (matches
// and hits) stays small whatever the size of a value. Long values are cut at
// a line or sentence end.
const textChunk = 32 << 10

// field says where a free-text value stands, for the abbreviation layer: in
// an OBX whose identifier may name a diagnosis (id), or in a value that is a
// diagnosis whatever it says (diag: DG1-3).
type field struct {
	id   *Coded
	diag bool
}

// text applies layers 4 and 5 to one free-text value.
func (c *Classifier) text(s *classifyState, text string, loc Location, context bool, fld field) {
	if text == "" || c.lex == nil {
		return
	}
	for off := 0; off < len(text); {
		end := len(text)
		if end-off > textChunk {
			end = off + textChunk
			if cut := strings.LastIndexAny(text[off+textChunk/2:end], ".\n;"); cut >= 0 {
				end = off + textChunk/2 + cut + 1
			}
		}
		base := off
		c.analyze(&s.ts, text[off:end], context, fld, func(f finding) {
			f.start += base
			f.end += base
			f.modStart += base
			f.modEnd += base
			c.emitFinding(s, f, text, loc, "")
		})
		off = end
	}
}

// emitFinding turns one finding into evidence. A non-empty value (a synoptic
// OBX's value, already trimmed) is added to the modifier as "value: v".
func (c *Classifier) emitFinding(s *classifyState, f finding, text string, loc Location, value string) {
	rule, abbr := "", ""
	switch {
	case f.cat >= 0:
		rule = c.cats[f.cat].id
	case f.abbr >= 0:
		rule, abbr = c.abbrevs[f.abbr].id, c.abbrevs[f.abbr].modifier
	default:
		rule = c.lexGroups[f.group].id
	}
	e := evAt(loc, rule, f.layer, text[f.start:f.end])
	e.Start, e.End = f.start, f.end
	// The modifier is "kind: trigger", "value: v" or both joined by "; ",
	// written into the call's string arena (one allocation for all of them).
	kind, trigger := "", ""
	if f.st != stAffirmed && f.modEnd > f.modStart {
		kind, trigger = f.st.String(), text[f.modStart:f.modEnd]
	} else if f.st == stSection {
		e.Modifier = f.st.String()
	}
	switch {
	case trigger != "" && value != "":
		e.Modifier = s.strs.concat(kind, ": ", trigger, "; value: ", value)
	case trigger != "":
		e.Modifier = s.strs.concat(kind, ": ", trigger, "", "")
	case value != "" && e.Modifier != "":
		e.Modifier = s.strs.concat(e.Modifier, "; value: ", value, "", "")
	case value != "":
		e.Modifier = s.strs.concat("value: ", value, "", "", "")
	}
	// An abbreviation's expansion comes first: "abbreviation: squamous
	// cell carcinoma; hedge: suspicious for".
	switch {
	case abbr != "" && e.Modifier != "":
		e.Modifier = s.strs.concat(abbr, "; ", e.Modifier, "", "")
	case abbr != "":
		e.Modifier = abbr
	}
	tag := f.tag
	switch f.st {
	case stAffirmed, stKnown:
		s.add(tag, e)
		if tag == TagMalignancy {
			if f.prior || f.st == stKnown {
				s.prior = true
				s.priorEv = append(s.priorEv, e)
			} else {
				s.add(TagNewCancer, e)
			}
		}
	case stHedged:
		if tag == TagMalignancy {
			tag = TagSuspectedMalignancy
		}
		s.add(tag, e)
	case stHistory:
		if tag == TagMalignancy || tag == TagSuspectedMalignancy {
			s.prior = true
			s.priorEv = append(s.priorEv, e)
		}
		s.suppress(tag, e)
	default:
		s.suppress(tag, e)
	}
}

// codedValue applies layer 3 to one coded value (OBX-5 or DG1-3) and its
// alternates; a triplet whose code is not recognised has its text read as
// free text.
func (c *Classifier) codedValue(s *classifyState, cd *Coded, loc Location, fld field) {
	for i := -1; i < len(cd.Alt); i++ {
		t := cd
		l := loc
		if i >= 0 {
			t = &cd.Alt[i]
			l = locOr(t.Loc, loc, loc.Field)
		}
		if !c.coded1(s, t, l) && t.Text != "" {
			c.text(s, t.Text, l, false, fld)
		}
	}
}

// coded1 classifies one code; it reports whether the code was recognised.
func (c *Classifier) coded1(s *classifyState, t *Coded, l Location) bool {
	code := strings.TrimSpace(t.Code)
	if code == "" {
		return false
	}
	sysName := strings.ToUpper(strings.TrimSpace(t.System))
	sys := c.systemClass(sysName)
	mod := ""
	if sysName == "" {
		switch {
		case looksICD10(code):
			sys, mod = sysICD10, "system missing: ICD-10 code shape"
		case looksMorphology(code):
			sys, mod = sysICDO3, "system missing: ICD-O-3 morphology shape"
		case isDigits(code):
			sys, mod = sysSNOMED, "system missing: SNOMED CT identifier shape"
		}
	}
	match := func() string {
		if t.Text == "" {
			return code
		}
		return s.strs.concat(code, " ", t.Text, "", "")
	}
	emit := func(rule, tag string, prior bool) {
		e := evAt(l, rule, LayerCodedValue, match())
		e.Modifier = mod
		if prior {
			s.prior = true
			s.priorEv = append(s.priorEv, e)
		}
		switch tag {
		case TagNone, "":
			return
		case TagMalignancy:
			s.add(tag, e)
			if !prior {
				s.add(TagNewCancer, e)
			}
		default:
			s.add(tag, e)
		}
	}
	switch sys {
	case sysICD10, sysICD9:
		ranges := c.icd10
		if sys == sysICD9 {
			ranges = c.icd9
		}
		n := normCode(code)
		for _, r := range ranges {
			if len(n) < len(r.from) || n[:len(r.from)] < r.from || n[:min(len(n), len(r.to))] > r.to {
				continue
			}
			tag := r.tag
			if tag == "uncertain" {
				tag = c.rs.Settings.UncertainNeoplasm
			}
			emit(r.id, tag, r.prior)
			return true
		}
		return sysName != "" // a known classification: its text is the code's title
	case sysICDO3:
		b, ok := morphologyBehaviour(code)
		if !ok {
			return sysName != "" // topography (C50.9): a site, not a diagnosis
		}
		tag, ok := c.icdo3[b]
		if !ok {
			return false
		}
		emit(c.rs.Coded.ICDO3.ID, tag, false)
		return true
	case sysSNOMED:
		if sc, ok := c.snomed[code]; ok {
			emit(c.rs.Coded.SNOMED.ID, sc.Tag, sc.Prior)
			return true
		}
		return false
	case sysLOINC:
		return false
	}
	// Local codes from config.
	upper := strings.ToUpper(code)
	refs := concatRefs(c.codes[sysName+"|"+upper], c.anySys[upper])
	for _, ref := range refs {
		for _, tg := range ref.tags {
			e := evAt(l, ref.id, LayerLocalCode, match())
			s.add(tg, e)
			if tg == TagMalignancy {
				s.add(TagNewCancer, e)
			}
		}
	}
	return len(refs) > 0
}

// looksICD10 reports whether code has the ICD-10 shape: a letter, two
// characters (digits, or a digit and a letter as in C7A), then an optional
// dot and up to four more.
func looksICD10(code string) bool {
	n := normCode(code)
	if len(n) < 3 || len(n) > 7 || !isLetter(n[0]) || n[1] < '0' || n[1] > '9' {
		return false
	}
	for i := 2; i < len(n); i++ {
		if !(n[i] >= '0' && n[i] <= '9' || n[i] >= 'A' && n[i] <= 'Z') {
			return false
		}
	}
	if strings.Contains(code, ".") && strings.IndexByte(code, '.') != 3 {
		return false
	}
	return true
}

// looksMorphology reports whether code is an ICD-O-3 morphology code with a
// slash ("8500/3", "M-8140/3").
func looksMorphology(code string) bool {
	_, ok := morphologyBehaviour(code)
	return ok && strings.Contains(code, "/")
}

// morphologyBehaviour returns the behaviour digit of an ICD-O-3 morphology
// code: "8140/3", "81403", "M-8140/3", "M81403", "8140/33" (with grade).
func morphologyBehaviour(code string) (byte, bool) {
	s := strings.ToUpper(strings.TrimSpace(code))
	s = strings.TrimPrefix(s, "M-")
	s = strings.TrimPrefix(s, "M")
	if len(s) < 5 || s[0] < '8' || s[0] > '9' || !isDigits(s[:4]) {
		return 0, false
	}
	rest := s[4:]
	rest = strings.TrimPrefix(rest, "/")
	if len(rest) < 1 || len(rest) > 2 || !isDigits(rest) {
		return 0, false
	}
	return rest[0], true
}

// finish derives new-cancer, applies switches and builds the output.
func (c *Classifier) finish(s *classifyState, r *Report, h History, out *Classification, buf *resultBuf) {
	if a := accFor(&s.tags, TagNewCancer); len(a.ev) > 0 {
		prior := s.prior
		var priorEv []Evidence
		if prior {
			priorEv = s.priorEv
		} else if h != nil && h.PriorMalignancy(r.PatientID) {
			prior = true
			priorEv = []Evidence{{Segment: "PID", Occurrence: 1, Field: "PID-3", Rule: "history.prior-malignancy", Match: "prior malignancy on record", Layer: LayerHistory}}
		}
		if prior {
			for _, e := range priorEv {
				s.suppress(TagNewCancer, e)
			}
			a.ev = a.ev[:0]
		} else {
			addEv(&s.tags, TagNewCancer, Evidence{Segment: "PID", Occurrence: 1, Field: "PID-3", Rule: "history.no-prior-malignancy", Match: "no prior malignancy on record or in the message", Layer: LayerHistory}, 0)
		}
	}
	// Tags and suppressed tags share one Tag array and one Evidence array.
	nt, et := countTags(s.tags, c.disabled)
	ns, es := countTags(s.suppressed, c.disabled)
	var b tagBuilder
	if buf != nil && buf.tags != nil && cap(buf.tags) >= nt+ns { // never nil: "tags": [] in JSON
		b.tags = buf.tags[:0]
	} else {
		b.tags = make([]Tag, 0, nt+ns)
	}
	if buf != nil && cap(buf.evs) >= et+es {
		b.evs = buf.evs[:0]
	} else if et+es > 0 {
		b.evs = make([]Evidence, 0, et+es)
	}
	out.Tags = b.build(s.tags, c.disabled)
	if ns > 0 {
		out.Suppressed = b.build(s.suppressed, c.disabled)
	}
	if buf != nil {
		// Keep the (possibly grown) arrays for the next message; the pool's
		// user releases them only when done with this result.
		buf.tags, buf.evs = b.tags[:0], b.evs[:0]
	}
}

// countTags returns how many tags of accs are given (some evidence, not
// disabled) and how much evidence they hold.
func countTags(accs []tagAcc, disabled map[string]bool) (tags, evidence int) {
	for _, a := range accs {
		if len(a.ev) > 0 && !disabled[a.tag] {
			evidence += len(a.ev)
			tags++
		}
	}
	return tags, evidence
}

// tagBuilder copies accumulated tags into shared output arrays; each slice
// it returns is clipped, so appending to one cannot overwrite another.
type tagBuilder struct {
	tags []Tag
	evs  []Evidence
}

func (b *tagBuilder) build(accs []tagAcc, disabled map[string]bool) []Tag {
	first := len(b.tags)
	appendTag := func(a *tagAcc) {
		start := len(b.evs)
		b.evs = append(b.evs, a.ev...)
		b.tags = append(b.tags, Tag{Tag: a.tag, Evidence: b.evs[start:len(b.evs):len(b.evs)]})
	}
	for _, t := range fixedTagOrder {
		for i := range accs {
			if accs[i].tag == t && len(accs[i].ev) > 0 && !disabled[t] {
				appendTag(&accs[i])
			}
		}
	}
	var others []int
	for i, a := range accs {
		if len(a.ev) > 0 && !disabled[a.tag] && !contains(fixedTagOrder, a.tag) {
			others = append(others, i)
		}
	}
	sort.Slice(others, func(x, y int) bool { return accs[others[x]].tag < accs[others[y]].tag })
	for _, i := range others {
		appendTag(&accs[i])
	}
	return b.tags[first:len(b.tags):len(b.tags)]
}
