package policy

// This file resolves what each term found in a free-text value means, in the
// manner of NegEx (Chapman et al., "A simple algorithm for identifying negated
// findings and diseases in discharge summaries", J Biomed Inform 2001) and its
// ConText extension (Harkema et al., J Biomed Inform 2009):
//
//   - pre-triggers ("negative for", "suspicious for", "history of") reach
//     forward over the next settings.pre_window words of the sentence;
//   - post-triggers ("is negative", "cannot be excluded") reach backward over
//     settings.post_window words of the same clause (a comma ends a clause);
//   - termination terms ("but", "however", "which", "consistent with") end a
//     scope; block terms ("margins", "lymph nodes") end a backward scope, so
//     "carcinoma, margins negative" keeps the carcinoma;
//   - pseudo-triggers ("no change", "gram negative") are matched and dropped,
//     so they never act as triggers;
//   - coordinated lists are covered because a scope reaches every term in it:
//     "negative for high-grade dysplasia or carcinoma".
//
// Precedence when several triggers reach a term: negation, then context
// (label, query, family, history), then hedge, then known.

// Term status after modifiers.
type status uint8

const (
	stAffirmed status = iota
	stKnown           // affirmed, but an already known malignancy (recurrence, residual)
	stHedged
	stHistory // not a diagnosis now; counts as prior malignancy
	stFamily
	stQuery
	stLabel
	stSection // inside a clinical-history / indication section
	stNegated
)

func (s status) String() string {
	switch s {
	case stHedged:
		return "hedge"
	case stKnown:
		return "known"
	case stHistory:
		return "history"
	case stFamily:
		return "family"
	case stQuery:
		return "query"
	case stLabel:
		return "label"
	case stSection:
		return "context-section"
	case stNegated:
		return "negated"
	}
	return "affirmed"
}

// hit is one selected match with its sentence and clause.
type hit struct {
	rawMatch
	kind    patKind
	roles   uint16
	group   int
	ctxGrp  int
	cat     int    // category rule index for category hits, else -1
	catVal  string // category value (lower case)
	tag     string // for terms: the tag (category terms: the value's tag)
	prior   bool
	sent    int32
	clause  int32
	section bool // in a context section
	diagSec bool // after a diagnosis header ("DIAGNOSIS:", "IMPRESSION:")
	abbr    int  // abbreviation index for abbreviation terms, else -1
	// abbrDiag says the words right around an abbreviation show a diagnosis.
	abbrDiag bool
}

// finding is one term in a text with what it means.
type finding struct {
	group      int // lexicon group of the term, or -1 for a category or abbreviation
	cat        int // category index, or -1
	abbr       int // abbreviation index, or -1
	tag        string
	prior      bool
	layer      string
	start, end int
	st         status
	modStart   int // trigger span, when st is not affirmed
	modEnd     int
}

// textScratch is reusable per-Classify space for text analysis.
type textScratch struct {
	sc     scanner
	ms     []rawMatch
	hits   []hit
	breaks []int32
	commas []int32
	stops  []int32 // prefix count of termination/header hits
	blocks []int32 // prefix count of block hits
	lbl    []rawMatch
	words  [wordWindow]byte // scratch for the abbreviation checks
}

// boundaries fills sc.breaks (sentence ends) and sc.commas for text.
func (ts *textScratch) boundaries(text string) {
	ts.breaks = ts.breaks[:0]
	ts.commas = ts.commas[:0]
	for i := 0; i < len(text); i++ {
		if !boundaryByte[text[i]] {
			continue // most bytes: one table lookup, one predictable branch
		}
		switch text[i] {
		case '.', '!':
			if i+1 >= len(text) {
				ts.breaks = append(ts.breaks, int32(i))
				continue
			}
			n := text[i+1]
			if n == ' ' || n == '\t' || n == '\n' || n == '\r' || n == '"' || n == ')' {
				ts.breaks = append(ts.breaks, int32(i))
			}
		case ';':
			ts.breaks = append(ts.breaks, int32(i))
		case ',':
			ts.commas = append(ts.commas, int32(i))
		case '\n', '\r':
			if newlineBreaks(text, i) {
				ts.breaks = append(ts.breaks, int32(i))
			}
		}
	}
}

// boundaryByte marks the bytes boundaries looks at.
var boundaryByte = [256]bool{'.': true, '!': true, ';': true, ',': true, '\n': true, '\r': true}

// newlineBreaks decides whether the line break at text[i] ends a sentence:
// after a colon, before a blank line, or before a list item ("1.", "A)", "-").
// A hard-wrapped sentence ("negative for\nmalignancy") continues.
func newlineBreaks(text string, i int) bool {
	j := i - 1
	for j >= 0 && (text[j] == ' ' || text[j] == '\t' || text[j] == '\r') {
		j--
	}
	if j < 0 || text[j] == ':' || text[j] == '\n' {
		return true
	}
	k := i + 1
	for k < len(text) && (text[k] == ' ' || text[k] == '\t' || text[k] == '\r') {
		k++
	}
	if k >= len(text) {
		return true
	}
	c := text[k]
	switch {
	case c == '\n', c == '-', c == '*', c == '#', c == '>':
		return true
	case c == 0xE2 && k+2 < len(text) && text[k+1] == 0x80 && text[k+2] == 0xA2: // bullet
		return true
	case c >= '0' && c <= '9':
		m := k
		for m < len(text) && text[m] >= '0' && text[m] <= '9' {
			m++
		}
		return m < len(text) && (text[m] == '.' || text[m] == ')')
	case c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z':
		if k+1 < len(text) && (text[k+1] == '.' || text[k+1] == ')') && (k+2 >= len(text) || text[k+2] == ' ') {
			return true
		}
		// An upper-case heading word followed by a colon ("FINAL DIAGNOSIS:").
		m := k
		upper := true
		for m < len(text) && text[m] != '\n' && text[m] != ':' && m-k < 40 {
			if text[m] >= 'a' && text[m] <= 'z' {
				upper = false
			}
			m++
		}
		return m < len(text) && text[m] == ':' && upper
	}
	return false
}

// headerFollows reports whether a header match ending at end is followed by a
// colon (or a dash), or ends its line, so it is a heading and not prose.
func headerFollows(text string, start, end int) bool {
	k := end
	for k < len(text) && (text[k] == ' ' || text[k] == '\t') {
		k++
	}
	if k < len(text) && (text[k] == ':' || text[k] == '-' && k+1 < len(text) && text[k+1] == ' ') {
		return true
	}
	if k >= len(text) || text[k] == '\n' || text[k] == '\r' {
		// A heading on its own line must start the line.
		j := start - 1
		for j >= 0 && (text[j] == ' ' || text[j] == '\t') {
			j--
		}
		return j < 0 || text[j] == '\n' || text[j] == '\r'
	}
	return false
}

// parseCategoryValue reads a structured-category value after a keyword
// ("BI-RADS: category 4A", "Bethesda diagnostic category VI", "LR-5"). It
// returns the lower-case value and the end offset, or "" when none follows.
func parseCategoryValue(text string, i int) (string, int) {
	const maxSkip = 48
	limit := min(len(text), i+maxSkip)
	for i < limit {
		c := text[i]
		switch {
		case c == ' ' || c == '\t' || c == ':' || c == '-' || c == '#' || c == '(' || c == '=' || c == '\n' || c == '\r':
			i++
			continue
		case c == 0xE2 && i+2 < len(text) && text[i+1] == 0x80 && (text[i+2] == 0x93 || text[i+2] == 0x94):
			i += 3
			continue
		}
		if c >= 0x80 { // a symbol such as ® or ™ after the system name
			i++
			continue
		}
		// Skip filler words and a version ("v1.1", "v2022").
		w := i
		for w < len(text) && isWordByte(text[w]) && text[w] < 0x80 {
			w++
		}
		word := text[i:w]
		if isFillerWord(word) {
			i = w
			continue
		}
		if len(word) > 1 && (word[0] == 'v' || word[0] == 'V') && isDigits(word[1:]) {
			for w < len(text) && (text[w] == '.' || text[w] >= '0' && text[w] <= '9') {
				w++
			}
			i = w
			continue
		}
		if w == i || w-i > 4 {
			return "", 0
		}
		val := lowerASCII(word)
		// "4 A" -> "4a"
		if len(val) == 1 && val[0] >= '0' && val[0] <= '9' && w+2 <= len(text) && text[w] == ' ' {
			l := text[w+1] | 0x20
			if l >= 'a' && l <= 'c' && (w+2 == len(text) || !isWordByte(text[w+2])) {
				return val + string(l), w + 2
			}
		}
		return val, w
	}
	return "", 0
}

func isFillerWord(w string) bool {
	switch lowerASCII(w) {
	case "category", "cat", "assessment", "final", "score", "class", "classification", "diagnostic", "overall", "is", "of", "lr", "tr", "tbsrtc", "version":
		return true
	}
	return false
}

func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] >= 'A' && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if b[j] >= 'A' && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// analyze finds the terms in text and what each means, calling emit for each.
// sectionContext says the text starts inside a context section (an OBX whose
// OBX-3 is a clinical-history code); fld says whether the value's field may
// be a diagnosis, for abbreviations.
func (c *Classifier) analyze(ts *textScratch, text string, sectionContext bool, fld field, emit func(f finding)) {
	ts.ms = c.lex.scan(&ts.sc, text, ts.ms[:0])
	if len(ts.ms) == 0 {
		return
	}
	ts.ms = selectLongest(ts.ms)
	ts.hits = ts.hits[:0]
	hasTerm := false
	for _, m := range ts.ms {
		p := &c.lex.patterns[m.pat]
		h := hit{rawMatch: m, kind: p.kind, roles: p.roles, group: p.group, ctxGrp: p.ctxGrp, cat: -1, abbr: -1}
		switch p.kind {
		case kindPseudo:
			continue
		case kindAbbrev:
			a := &c.abbrevs[p.group]
			ok, diag := c.abbrevLocal(&ts.words, a, p.norm, text, int(m.start), int(m.end))
			if !ok {
				continue
			}
			h.kind = kindTerm
			h.abbr = p.group
			h.abbrDiag = diag
			h.tag = a.tag
			hasTerm = true
		case kindHeader:
			if !headerFollows(text, int(m.start), int(m.end)) {
				continue
			}
		case kindCategory:
			cr := &c.cats[p.group]
			val, end := parseCategoryValue(text, int(m.end))
			if val == "" {
				continue
			}
			tag, ok := cr.values[val]
			if !ok || tag == TagNone {
				continue
			}
			h.kind = kindTerm
			h.cat = p.group
			h.catVal = val
			h.tag = tag
			h.prior = cr.prior[val]
			h.end = int32(end)
			hasTerm = true
		case kindTerm:
			g := &c.lexGroups[p.group]
			h.tag = g.tag
			h.prior = g.prior
			hasTerm = true
		}
		ts.hits = append(ts.hits, h)
	}
	if !hasTerm {
		return
	}
	// Sentence and clause of each hit (sentence ends and commas are looked
	// for only in a text with a term); sections; prefix counts of stops.
	ts.boundaries(text)
	bi, ci := 0, 0
	section := sectionContext
	diagSec := false
	ts.stops = ts.stops[:0]
	ts.blocks = ts.blocks[:0]
	var stops, blocks int32
	sent := int32(0)
	for i := range ts.hits {
		h := &ts.hits[i]
		for bi < len(ts.breaks) && ts.breaks[bi] < h.start {
			bi++
		}
		for ci < len(ts.commas) && ts.commas[ci] < h.start {
			ci++
		}
		h.clause = int32(ci)
		if h.kind == kindHeader {
			section = c.lexGroups[h.group].context == "history"
			diagSec = c.lexGroups[h.group].context == "diagnosis"
			sent++ // a heading starts a new sentence
		}
		h.sent = int32(bi) + sent
		h.section = section
		h.diagSec = diagSec
		ts.stops = append(ts.stops, stops)
		ts.blocks = append(ts.blocks, blocks)
		if h.kind == kindHeader || h.roles&roleTermination != 0 {
			stops++
		}
		if h.roles&roleBlock != 0 {
			blocks++
		}
	}
	ts.stops = append(ts.stops, stops)
	ts.blocks = append(ts.blocks, blocks)

	preWin := int32(c.rs.Settings.PreWindow)
	postWin := int32(c.rs.Settings.PostWindow)
	fieldDiag := int8(0) // 0 unknown, 1 yes, -1 no: decided once, when needed
	if fld.diag {
		fieldDiag = 1
	}
	for i := range ts.hits {
		t := &ts.hits[i]
		if t.kind != kindTerm {
			continue
		}
		if t.abbr >= 0 && c.abbrevs[t.abbr].diagnosis && !t.abbrDiag && !t.diagSec && !triggerBefore(ts.hits, i) {
			if fieldDiag == 0 {
				fieldDiag = -1
				if c.fieldIsDiagnosis(ts, fld.id) {
					fieldDiag = 1
				}
			}
			if fieldDiag < 0 {
				continue // an abbreviation outside a diagnosis: not the abbreviation
			}
		}
		st := stAffirmed
		var mod *hit
		consider := func(s status, m *hit) {
			if s > st {
				st, mod = s, m
			}
		}
		// Pre-triggers before the term, same sentence, no stop between. The
		// walk stops at the widest window, so the work is linear in the hits.
		for j := i - 1; j >= 0; j-- {
			m := &ts.hits[j]
			if m.sent != t.sent || t.w0-m.w1 > c.maxPreWindow {
				break
			}
			if m.kind == kindTerm || m.roles&(roleNegPre|roleHedgePre|roleCtxPre) == 0 {
				continue
			}
			if ts.stops[i]-ts.stops[j+1] > 0 {
				break
			}
			win := preWin
			g := m.group
			if m.roles&roleCtxPre != 0 && m.ctxGrp >= 0 {
				g = m.ctxGrp
			}
			if w := c.lexGroups[g].window; w > 0 {
				win = int32(w)
			}
			if t.w0-m.w1 > win {
				continue
			}
			if m.roles&roleNegPre != 0 {
				consider(stNegated, m)
			}
			if m.roles&roleCtxPre != 0 {
				consider(c.lexGroups[g].ctxStatus, m)
			}
			if m.roles&roleHedgePre != 0 {
				consider(stHedged, m)
			}
		}
		// Post-triggers after the term, same sentence and clause, no stop or block between.
		for j := i + 1; j < len(ts.hits); j++ {
			m := &ts.hits[j]
			if m.sent != t.sent || m.clause != t.clause || m.w0-t.w1 > postWin {
				break
			}
			if m.kind == kindTerm || m.roles&(roleNegPost|roleHedgePost) == 0 {
				if m.kind == kindHeader || m.roles&(roleTermination|roleBlock) != 0 {
					break
				}
				continue
			}
			if m.w0-t.w1 > postWin {
				break
			}
			if m.roles&roleNegPost != 0 {
				consider(stNegated, m)
			}
			if m.roles&roleHedgePost != 0 {
				consider(stHedged, m)
			}
		}
		if t.section && (st == stAffirmed || st == stHedged) {
			st, mod = stSection, nil
		}
		f := finding{group: -1, cat: t.cat, abbr: t.abbr, tag: t.tag, prior: t.prior, start: int(t.start), end: int(t.end), st: st}
		switch {
		case t.cat >= 0:
			f.layer = LayerStructuredCategory
		case t.abbr >= 0:
			f.layer = LayerFreeText
		default:
			f.group = t.group
			f.layer = c.lexGroups[t.group].layer
		}
		if mod != nil {
			f.modStart, f.modEnd = int(mod.start), int(mod.end)
		}
		emit(f)
	}
}

// triggerBefore reports whether the hit before hits[i] is a pre-trigger or a
// termination term ("suspicious for", "history of", "consistent with") that
// ends on the word before it in the same sentence: such a trigger names a
// finding, so the abbreviation after it stands where a diagnosis is written.
func triggerBefore(hits []hit, i int) bool {
	if i == 0 {
		return false
	}
	t, m := &hits[i], &hits[i-1]
	return m.kind != kindTerm && m.sent == t.sent && t.w0-m.w1 <= 1 &&
		m.roles&(roleNegPre|roleHedgePre|roleCtxPre|roleTermination) != 0
}
