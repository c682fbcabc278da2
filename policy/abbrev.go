package policy

// This file is the abbreviation layer of layer 5: the shorthand of pathology,
// haematopathology and radiology reports ("SCC", "Hepatocellular ca.",
// "AML with NPM1 mutation"). Abbreviations are compiled into the lexicon's
// automaton, so finding them costs nothing extra; what costs is deciding
// whether a form found is the abbreviation at all, and that runs only on the
// few forms found. A form counts when:
//
//  1. its case fits (a form written with capitals matches only that case:
//     "ALL" is not "all");
//  2. nothing around it makes it something else: a number before a unit
//     ("5 MM"), a number, "+" or "/" after an analyte ("CA 19-9", "Ca++",
//     "Ca/Mg"), an analyte word ("ionized Ca", "CA antigen"), a ZIP code
//     after a state ("San Diego, CA 92101"), a following word after a
//     common word ("ALL margins"), or the abbreviation's own not_before and
//     not_after words ("GBM thickening": glomerular basement membrane);
//  3. for context "diagnosis", the text is a diagnosis there: the field is
//     a diagnosis or impression (by its OBX-3 code or text), a diagnosis
//     header ("DIAGNOSIS:", "IMPRESSION:") comes before it in the value, it
//     follows a specimen label's colon ("Liver, biopsy: HCC"), a diagnostic
//     word comes right before it ("invasive ca", "Hepatocellular ca."), a
//     grade, stage or qualifier right after it ("SCC, moderately
//     differentiated", "MDS with excess blasts"), or a negation, hedge or
//     context trigger right before it ("suspicious for SCC").
//
// A form that counts is a term like any other: negation, hedges and context
// apply to it, and its evidence names the expansion.

import (
	"strings"
	"unsafe"
)

// abbrevC is one compiled abbreviation.
type abbrevC struct {
	id        string
	tag       string
	modifier  string // "abbreviation: <expansion>"
	diagnosis bool   // needs a diagnostic context
	analyte   bool
	unit      bool
	word      bool
	address   bool
	notBefore map[string]bool
	notAfter  map[string]bool
	// exact maps a form's normalised text to the letters and digits of its
	// case-sensitive spellings; a form absent from exact matches any case.
	exact map[string][]string
}

// abbrevContext is the compiled AbbreviationContext.
type abbrevContext struct {
	diagCodes     map[string]bool
	leads         map[string]bool
	followers     map[string]bool
	analyteBefore map[string]bool
	analyteAfter  map[string]bool
}

// wordSet normalises words into a set.
func wordSet(words []string) map[string]bool {
	m := make(map[string]bool, len(words))
	for _, w := range words {
		if n := normalize(w); n != "" {
			m[n] = true
		}
	}
	return m
}

// compileAbbreviations adds the rule set's abbreviations to pats (through
// addPat) and returns them compiled.
func compileAbbreviations(rs *RuleSet, addPat func(pattern)) ([]abbrevC, abbrevContext) {
	ac := rs.Settings.AbbreviationContext
	ctx := abbrevContext{
		diagCodes:     map[string]bool{},
		leads:         wordSet(ac.Leads),
		followers:     wordSet(ac.Followers),
		analyteBefore: wordSet(ac.AnalyteBefore),
		analyteAfter:  wordSet(ac.AnalyteAfter),
	}
	for _, code := range ac.DiagnosisSections {
		ctx.diagCodes[strings.ToUpper(strings.TrimSpace(code))] = true
	}
	out := make([]abbrevC, 0, len(rs.Abbreviations))
	for ai, a := range rs.Abbreviations {
		ab := abbrevC{
			id:        a.ID,
			tag:       a.Tag,
			modifier:  "abbreviation: " + strings.TrimSpace(a.Expansion),
			diagnosis: a.Context != "any",
			notBefore: wordSet(a.NotBefore),
			notAfter:  wordSet(a.NotAfter),
			exact:     map[string][]string{},
		}
		for _, c := range a.Collides {
			switch c {
			case "analyte":
				ab.analyte = true
			case "unit":
				ab.unit = true
			case "word":
				ab.word = true
			case "address":
				ab.address = true
			}
		}
		anyCase := map[string]bool{}
		for _, f := range a.Forms {
			n := normalize(f)
			if n == "" {
				continue
			}
			if strings.ToLower(f) == f {
				anyCase[n] = true
			} else {
				ab.exact[n] = append(ab.exact[n], alnum(f))
			}
			addPat(pattern{kind: kindAbbrev, group: ai, ctxGrp: -1, norm: n})
		}
		for n := range anyCase {
			delete(ab.exact, n)
		}
		out = append(out, ab)
	}
	return out, ctx
}

// alnum returns the word bytes of s (ASCII letters and digits, and the bytes
// of non-ASCII characters), in order.
func alnum(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if isWordByte(s[i]) {
			b = append(b, s[i])
		}
	}
	return string(b)
}

// sameAlnum reports whether the word bytes of span are exactly want.
func sameAlnum(span, want string) bool {
	j := 0
	for i := 0; i < len(span); i++ {
		if !isWordByte(span[i]) {
			continue
		}
		if j >= len(want) || span[i] != want[j] {
			return false
		}
		j++
	}
	return j == len(want)
}

// wordWindow bounds how far around a form the checks look, in bytes.
const wordWindow = 48

// nextWords returns up to n words after text[i:], normalised (lower case,
// one space between) into buf, skipping the separators in skip first. It
// stops at a sentence or clause end other than those skipped. The result
// shares buf's memory: it is valid until buf is written again.
func nextWords(buf *[wordWindow]byte, text string, i int, skip string, n int) string {
	for i < len(text) && (text[i] == ' ' || text[i] == '\t' || strings.IndexByte(skip, text[i]) >= 0) {
		i++
	}
	k := 0
	words := 0
	for words < n && i < len(text) && k < len(buf) {
		if !isWordByte(text[i]) {
			if text[i] != ' ' && text[i] != '-' && text[i] != '\t' {
				break
			}
			for i < len(text) && (text[i] == ' ' || text[i] == '-' || text[i] == '\t') {
				i++
			}
			if k > 0 && i < len(text) && isWordByte(text[i]) && k < len(buf) {
				buf[k] = ' '
				k++
			}
			continue
		}
		for i < len(text) && isWordByte(text[i]) && k < len(buf) {
			c := text[i]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			buf[k] = c
			k++
			i++
		}
		words++
	}
	for k > 0 && buf[k-1] == ' ' {
		k--
	}
	return unsafe.String(&buf[0], k)
}

// wordsBefore reports whether the word, or the two words, right before
// text[:i] (skipping spaces, hyphens and the bytes in skip; not crossing
// other punctuation) are in set.
func wordsBefore(buf *[wordWindow]byte, set map[string]bool, text string, i int, skip string) bool {
	if len(set) == 0 {
		return false
	}
	j := i
	for j > 0 && (text[j-1] == ' ' || text[j-1] == '\t' || text[j-1] == '-' || strings.IndexByte(skip, text[j-1]) >= 0) {
		j--
	}
	one, two := -1, -1 // starts of the word before and of the one before it
	for n := 0; n < 2; n++ {
		k := j
		for k > 0 && isWordByte(text[k-1]) && j-k < wordWindow {
			k--
		}
		if k == j {
			break
		}
		if n == 0 {
			one = k
			j = k
			for j > 0 && (text[j-1] == ' ' || text[j-1] == '\t' || text[j-1] == '-') {
				j--
			}
			continue
		}
		two = k
	}
	if one < 0 {
		return false
	}
	if set[nextWords(buf, text, one, "", 1)] {
		return true
	}
	return two >= 0 && set[nextWords(buf, text, two, "", 2)]
}

// inSet reports whether words (space-separated) or one of its leading word
// prefixes is in set.
func inSet(set map[string]bool, words string) bool {
	if len(set) == 0 || words == "" {
		return false
	}
	for i := 0; i <= len(words); i++ {
		if i == len(words) || words[i] == ' ' {
			if set[words[:i]] {
				return true
			}
		}
	}
	return false
}

// prevByte returns the byte before text[:i], skipping spaces, tabs and the
// bytes in skip, or 0.
func prevByte(text string, i int, skip string) byte {
	for i > 0 && (text[i-1] == ' ' || text[i-1] == '\t' || strings.IndexByte(skip, text[i-1]) >= 0) {
		i--
	}
	if i == 0 {
		return 0
	}
	return text[i-1]
}

// nextByte returns the byte at or after text[i], skipping spaces, tabs and
// the bytes in skip, or 0.
func nextByte(text string, i int, skip string) byte {
	for i < len(text) && (text[i] == ' ' || text[i] == '\t' || strings.IndexByte(skip, text[i]) >= 0) {
		i++
	}
	if i >= len(text) {
		return 0
	}
	return text[i]
}

func isDigit(b byte) bool { return b >= '0' && b <= '9' }

// isStageToken reports whether w (lower case) is a TNM token: an optional
// prefix (y, p, c, r), then T, N or M, then a digit, x or "is" ("pt2",
// "ypn0", "t2n0m0").
func isStageToken(w string) bool {
	w = strings.TrimLeft(w, "ypcr")
	if len(w) < 2 || (w[0] != 't' && w[0] != 'n' && w[0] != 'm') {
		return false
	}
	return isDigit(w[1]) || w[1] == 'x' || strings.HasPrefix(w[1:], "is")
}

// abbrevLocal applies the local checks (case, collisions, not_before and
// not_after) to the form at text[start:end] of abbreviation a with
// normalised form norm. It reports whether the form may be the
// abbreviation, and whether the words right around it already show a
// diagnosis (a specimen label's colon, a lead word, a follower).
func (c *Classifier) abbrevLocal(buf *[wordWindow]byte, a *abbrevC, norm, text string, start, end int) (ok, diag bool) {
	if ex, has := a.exact[norm]; has {
		span := text[start:end]
		ok := false
		for _, e := range ex {
			if sameAlnum(span, e) {
				ok = true
				break
			}
		}
		if !ok {
			return false, false
		}
	}
	ctx := &c.abbrCtx
	pb := prevByte(text, start, "")
	nb := nextByte(text, end, "")
	pbh := prevByte(text, start, "-")  // "5-MM"
	nbh := nextByte(text, end, "-:=.") // "CA-125", "CA: 9.4", "ca. 2 cm" (circa)
	if a.unit && isDigit(pbh) {
		return false, false // "5 MM", "1.5 MM", "2 x 3 MM", "3-5 MM", "5-MM"
	}
	after := nextWords(buf, text, end, "", 3)
	if a.unit && strings.HasPrefix(after, "x ") && len(after) > 2 && isDigit(after[2]) {
		return false, false // "MM x 4 MM": a dimension
	}
	if a.analyte {
		if isDigit(nbh) || nb == '+' || nb == '/' || nb == '^' || nb == '=' {
			return false, false // "CA 19-9", "CA-125", "Ca 9.4", "Ca++", "Ca/Mg"
		}
		if inSet(ctx.analyteAfter, after) {
			return false, false
		}
	}
	if a.address && isDigit(nb) {
		return false, false // "San Diego, CA 92101"
	}
	if len(a.notAfter) > 0 && inSet(a.notAfter, after) {
		return false, false
	}
	if a.word && nb != 0 && isWordByte(nb) && !inSet(ctx.followers, after) {
		return false, false // "ALL margins negative"
	}
	if a.analyte && wordsBefore(buf, ctx.analyteBefore, text, start, "(") {
		return false, false // "ionized Ca", "Calcium (Ca)"
	}
	if len(a.notBefore) > 0 && wordsBefore(buf, a.notBefore, text, start, "") {
		return false, false
	}
	if a.address && pb == ',' && addressBefore(text, start) && (nb == 0 || nb == '\n' || nb == '\r' || nb == '.') {
		return false, false // "Sacramento, CA" at a line's end
	}
	if !a.diagnosis {
		return true, true
	}
	// A specimen label's colon: "Liver, segment 7, biopsy: HCC".
	j := start
	for j > 0 && (text[j-1] == ' ' || text[j-1] == '\t' || text[j-1] == '-' || text[j-1] == '*' || text[j-1] == '\n' || text[j-1] == '\r') {
		j--
	}
	if j > 0 && text[j-1] == ':' && (nb == 0 || !isWordByte(nb) || inSet(ctx.followers, nextWords(buf, text, end, ",", 2))) {
		// The label's diagnosis stands alone or with its qualifiers
		// ("Liver, biopsy: HCC, well differentiated"); a sentence after a
		// colon ("Echocardiogram: AML and PML are thickened") is not one.
		return true, true
	}
	if wordsBefore(buf, ctx.leads, text, start, "") {
		return true, true
	}
	follow := nextWords(buf, text, end, ",", 2)
	if inSet(ctx.followers, follow) {
		return true, true
	}
	if w, _, _ := strings.Cut(follow, " "); isStageToken(w) {
		return true, true
	}
	return true, false
}

// addressBefore reports whether the word before the comma before text[i] is
// written like a place name ("Diego", "Sacramento"): a capital, then lower
// case.
func addressBefore(text string, i int) bool {
	j := i
	for j > 0 && (text[j-1] == ' ' || text[j-1] == '\t') {
		j--
	}
	if j == 0 || text[j-1] != ',' {
		return false
	}
	j--
	end := j
	for j > 0 && isLetter(text[j-1]) {
		j--
	}
	w := text[j:end]
	return len(w) >= 2 && w[0] >= 'A' && w[0] <= 'Z' && w[1] >= 'a' && w[1] <= 'z'
}

// fieldIsDiagnosis reports whether an OBX-3 identifier names a diagnosis or
// impression: its LOINC code is in abbreviation_context.diagnosis_sections,
// or its text holds a diagnosis header and no context header ("Final
// diagnosis" yes, "Pre-operative diagnosis" no).
func (c *Classifier) fieldIsDiagnosis(ts *textScratch, id *Coded) bool {
	if id == nil {
		return false
	}
	for i := -1; i < len(id.Alt); i++ {
		t := id
		if i >= 0 {
			t = &id.Alt[i]
		}
		code := strings.ToUpper(strings.TrimSpace(t.Code))
		sys := c.systems[strings.ToUpper(strings.TrimSpace(t.System))]
		if code != "" && (sys == sysLOINC || t.System == "" && looksLOINC(code)) && c.abbrCtx.diagCodes[code] {
			return true
		}
	}
	for i := -1; i < len(id.Alt); i++ {
		t := id
		if i >= 0 {
			t = &id.Alt[i]
		}
		lbl := label(t)
		if lbl == "" || c.lex == nil {
			continue
		}
		ts.lbl = selectLongest(c.lex.scan(&ts.sc, lbl, ts.lbl[:0]))
		diag, hist := false, false
		for _, m := range ts.lbl {
			p := &c.lex.patterns[m.pat]
			if p.kind != kindHeader {
				continue
			}
			switch c.lexGroups[p.group].context {
			case "diagnosis":
				diag = true
			case "history":
				hist = true
			}
		}
		if diag && !hist {
			return true
		}
	}
	return false
}
