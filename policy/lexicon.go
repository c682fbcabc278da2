package policy

import "strings"

// This file holds the multi-pattern matcher behind the classifier: an
// Aho-Corasick automaton (Aho & Corasick, "Efficient string matching", CACM
// 1975) compiled once per Classifier into a dense transition table over a
// compressed byte alphabet. Scanning is one table lookup per input byte, so
// the cost of matching is linear in the text whatever the size of the lexicon.
//
// Text and patterns are normalised the same way while scanning:
//   - ASCII letters are folded to lower case;
//   - runs of white space, hyphens, underscores, en/em dashes and no-break
//     spaces count as one space ("non-Hodgkin" = "non hodgkin");
//   - apostrophes (' and U+2019) are dropped ("Hodgkin's" = "hodgkins");
//   - accented Latin letters of U+00C0–U+00FF fold to their ASCII letter
//     ("cáncer" = "cancer", "Diagnóstico" = "diagnostico"), so Spanish and
//     Portuguese phrases match however they are accented and the
//     automaton's alphabet stays small;
//   - every other byte is kept as is (UTF-8 passes through unchanged).
//
// Offsets reported for a match are byte offsets into the original text.

// patKind is what a pattern means to the classifier.
type patKind uint8

const (
	kindTerm        patKind = iota + 1 // a finding (malignancy word, category term, ...)
	kindPseudo                         // looks like a trigger or term but is neither ("no change", "gram negative")
	kindNegPre                         // negates terms after it ("negative for")
	kindNegPost                        // negates terms before it ("is negative")
	kindHedgePre                       // makes terms after it uncertain ("suspicious for")
	kindHedgePost                      // makes terms before it uncertain ("cannot be excluded")
	kindContextPre                     // terms after it are not a diagnosis ("history of", "rule out")
	kindTermination                    // ends the scope of a trigger ("but", "however")
	kindBlock                          // ends backward scope: "margins", "lymph nodes"
	kindHeader                         // a section header ("clinical history:")
	kindCategory                       // a structured-category system keyword ("BI-RADS")
	kindName                           // a name in an identifier text (OBR-4 / OBX-3)
	kindExclude                        // a name that cancels other names in the same text
	kindAbbrev                         // an abbreviation form ("SCC", "ca"), checked in context before it is a term
)

// Trigger roles: one phrase may be a trigger in both directions ("absent",
// "suspected"), so triggers carry a set of roles rather than one kind.
const (
	roleNegPre uint16 = 1 << iota
	roleNegPost
	roleHedgePre
	roleHedgePost
	roleCtxPre
	roleTermination
	roleBlock
)

var roleOfKind = map[patKind]uint16{
	kindNegPre: roleNegPre, kindNegPost: roleNegPost, kindHedgePre: roleHedgePre,
	kindHedgePost: roleHedgePost, kindContextPre: roleCtxPre, kindTermination: roleTermination,
	kindBlock: roleBlock,
}

// pattern is one compiled phrase.
type pattern struct {
	kind    patKind
	roles   uint16 // trigger roles (for trigger kinds)
	group   int    // index of the owning phrase group (first one for merged triggers)
	ctxGrp  int    // group of the context-pre role, when it is not group
	norm    string // normalised phrase
	spaces  int32  // spaces in norm: a match spans spaces+1 words
	wordAtL bool   // first byte is a word byte: require a boundary before
	wordAtR bool   // last byte is a word byte: require a boundary after
}

// rawMatch is one pattern occurrence in a text.
type rawMatch struct {
	pat        int32 // pattern index
	start, end int32 // byte offsets in the original text
	w0, w1     int32 // word index at start and at end
}

const (
	ringSize   = 256 // > longest normalised pattern; scan indexes the ring with uint8
	maxPattern = ringSize - 1
)

// The scanner indexes its rings with uint8(fed), which is fed % ringSize (and
// needs no bounds check) only while ringSize is 256.
var _ = [1]struct{}{}[ringSize-256]

// automaton is a compiled Aho-Corasick automaton.
type automaton struct {
	classOf  [256]uint8 // byte -> alphabet class; 0 = not in any pattern
	nclass   int
	next     []int32 // state*nclass + class -> state (full DFA)
	out      []int32 // state -> pattern ending here, or -1
	dict     []int32 // state -> nearest proper suffix state with output, or -1
	patterns []pattern
}

// normByte classifies one input byte for normalisation.
func isSpaceLike(b byte) bool {
	switch b {
	case ' ', '\t', '\n', '\r', '\v', '\f', '-', '_':
		return true
	}
	return false
}

// isWordByte reports whether b is part of a word for boundary checks.
func isWordByte(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b >= 0x80
}

// multiByteSep reports the length of a UTF-8 separator at s[i:] that
// normalises to a space (en dash, em dash, no-break space) or is dropped
// (right single quotation mark), and whether it is dropped.
func multiByteSep(s string, i int) (n int, drop bool) {
	if s[i] == 0xE2 && i+2 < len(s) && s[i+1] == 0x80 {
		switch s[i+2] {
		case 0x93, 0x94: // en dash, em dash
			return 3, false
		case 0x99: // right single quotation mark
			return 3, true
		}
	}
	if s[i] == 0xC2 && i+1 < len(s) && s[i+1] == 0xA0 {
		return 2, false
	}
	return 0, false
}

// latin1Fold maps the second byte of a two-byte UTF-8 letter of U+00C0–
// U+00FF (first byte 0xC3) to its unaccented lower-case ASCII letter, or 0
// for the signs and letters that have none (×, ÷, Æ, ß, Þ, Ð).
var latin1Fold = func() (t [256]byte) {
	const upper = "aaaaaa\x00ceeeeiiii\x00nooooo\x00ouuuuy\x00\x00" // 0x80-0x9F: À-ß
	for i := 0; i < 32; i++ {
		t[0x80+i] = upper[i]
		t[0xA0+i] = upper[i] // 0xA0-0xBF: à-ÿ, the same letters
	}
	t[0xBF] = 'y' // ÿ
	return t
}()

// foldLatin1 reports the ASCII letter the two bytes at s[i:] fold to, or 0.
func foldLatin1(s string, i int) byte {
	if s[i] != 0xC3 || i+1 >= len(s) {
		return 0
	}
	return latin1Fold[s[i+1]]
}

// normalize returns s normalised as described in the file comment (used for
// patterns at compile time).
func normalize(s string) string {
	b := make([]byte, 0, len(s))
	space := true
	for i := 0; i < len(s); {
		c := s[i]
		if f := foldLatin1(s, i); f != 0 {
			b = append(b, f)
			space = false
			i += 2
			continue
		}
		if n, drop := multiByteSep(s, i); n > 0 {
			i += n
			if !drop && !space {
				b = append(b, ' ')
				space = true
			}
			continue
		}
		i++
		switch {
		case c == '\'':
			continue
		case isSpaceLike(c):
			if !space {
				b = append(b, ' ')
				space = true
			}
			continue
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		}
		b = append(b, c)
		space = false
	}
	for len(b) > 0 && b[len(b)-1] == ' ' {
		b = b[:len(b)-1]
	}
	return string(b)
}

// compileAutomaton builds the automaton for pats (already normalised, non-empty).
func compileAutomaton(pats []pattern) *automaton {
	for i := range pats {
		pats[i].spaces = int32(strings.Count(pats[i].norm, " "))
	}
	a := &automaton{patterns: pats}
	// Alphabet: every byte used by a pattern gets its own class.
	var used [256]bool
	for _, p := range pats {
		for i := 0; i < len(p.norm); i++ {
			used[p.norm[i]] = true
		}
	}
	n := 1
	for b := 0; b < 256; b++ {
		if used[b] {
			a.classOf[b] = uint8(n)
			n++
		}
	}
	// Upper-case letters share the class of their lower-case letter.
	for b := 'A'; b <= 'Z'; b++ {
		a.classOf[b] = a.classOf[b+('a'-'A')]
	}
	a.nclass = n
	// Trie.
	a.next = make([]int32, n) // root row
	a.out = []int32{-1}
	for pi, p := range pats {
		s := int32(0)
		for i := 0; i < len(p.norm); i++ {
			c := int32(a.classOf[p.norm[i]])
			t := a.next[int(s)*n+int(c)]
			if t == 0 {
				t = int32(len(a.out))
				a.out = append(a.out, -1)
				a.next = append(a.next, make([]int32, n)...)
				a.next[int(s)*n+int(c)] = t
			}
			s = t
		}
		if a.out[s] < 0 {
			a.out[s] = int32(pi)
		}
	}
	// Failure links by BFS, turning the trie into a full DFA.
	states := len(a.out)
	fail := make([]int32, states)
	a.dict = make([]int32, states)
	for i := range a.dict {
		a.dict[i] = -1
	}
	queue := make([]int32, 0, states)
	for c := 1; c < n; c++ {
		if t := a.next[c]; t != 0 {
			fail[t] = 0
			queue = append(queue, t)
		}
	}
	order := make([]int32, 1, states) // BFS order, root first
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		order = append(order, s)
		f := fail[s]
		if a.out[f] >= 0 {
			a.dict[s] = f
		} else {
			a.dict[s] = a.dict[f]
		}
		for c := 1; c < n; c++ {
			t := a.next[int(s)*n+c]
			if t != 0 {
				fail[t] = a.next[int(f)*n+c]
				queue = append(queue, t)
			} else {
				a.next[int(s)*n+c] = a.next[int(f)*n+c]
			}
		}
	}
	// Renumber states in BFS order so the shallow states, which most bytes
	// visit, share a few cache lines at the start of the table.
	perm := make([]int32, states)
	for newID, oldID := range order {
		perm[oldID] = int32(newID)
	}
	next := make([]int32, len(a.next))
	out := make([]int32, states)
	dict := make([]int32, states)
	for oldID := 0; oldID < states; oldID++ {
		nid := int(perm[oldID])
		for c := 0; c < n; c++ {
			next[nid*n+c] = perm[a.next[oldID*n+c]]
		}
		out[nid] = a.out[oldID]
		if d := a.dict[oldID]; d >= 0 {
			dict[nid] = perm[d]
		} else {
			dict[nid] = -1
		}
	}
	a.next, a.out, a.dict = next, out, dict
	// rb: every pattern ending at the state (its own and those reached by
	// dictionary links) needs a word boundary after it. States are in BFS
	// order and a dictionary link points to a shallower state, so one pass
	// in order sees each link's target first.
	rb := make([]bool, states)
	for t := 0; t < states; t++ {
		ok := a.out[t] < 0 || pats[a.out[t]].wordAtR
		if d := a.dict[t]; d >= 0 {
			ok = ok && rb[d]
		}
		rb[t] = ok
	}
	// Store each target as its row offset (state*nclass), flagged when the
	// state has output (and when all of that output needs a word boundary
	// after it): the scanner's dependent chain is then one load and one add
	// per byte, no multiply.
	for i, t := range a.next {
		v := t * int32(n)
		if a.out[t] >= 0 || a.dict[t] >= 0 {
			v |= outFlag
			if rb[t] {
				v |= rbFlag
			}
		}
		a.next[i] = v
	}
	return a
}

// scanner holds per-scan scratch space so scanning allocates nothing once warm.
// A match's first word index is not kept per byte: a normalised pattern has
// single spaces, and the word count rises once at each, so a match starts
// at word w1 - spaces.
type scanner struct {
	ringOff [ringSize]int32
}

// Byte kinds for the scanner's fast path.
const (
	bkNormal uint8 = iota
	bkSpace        // white space, hyphen, underscore: one space
	bkApos         // apostrophe: dropped
	bkMulti        // lead byte of a UTF-8 separator we normalise (E2, C2) or of an accented letter we fold (C3)
)

var byteKind = func() (k [256]uint8) {
	for _, b := range []byte{' ', '\t', '\n', '\r', '\v', '\f', '-', '_'} {
		k[b] = bkSpace
	}
	k['\''] = bkApos
	k[0xE2] = bkMulti
	k[0xC2] = bkMulti
	k[0xC3] = bkMulti
	return k
}()

// outFlag marks, in the transition table, a target state that has an output
// (its own pattern or one reachable through dictionary links), so the scanner
// looks at outputs only when there is one.
//
// rbFlag marks a target state all of whose output needs a word boundary
// after it: inside a word ("no" in "carcinoma", "ca" in "calcium") the
// scanner skips such a state's output at once.
const (
	outFlag   = int32(1) << 30
	rbFlag    = int32(1) << 29
	stateMask = rbFlag - 1
)

// scan appends every pattern occurrence in text that sits on word boundaries
// to dst, in order of end offset.
func (a *automaton) scan(sc *scanner, text string, dst []rawMatch) []rawMatch {
	if a == nil || len(a.patterns) == 0 {
		return dst
	}
	n := a.nclass
	next := a.next[:len(a.next):len(a.next)]
	spaceCls := int(a.classOf[' '])
	s := int32(0)
	fed := 0          // normalised bytes fed so far
	words := int32(0) // words started so far
	space := true
	for i := 0; i < len(text); i++ {
		c := text[i]
		off := i // where the normalised byte starts in text
		switch byteKind[c] {
		case bkApos:
			continue
		case bkSpace:
			if space {
				continue
			}
			space = true
			sc.ringOff[uint8(fed)] = int32(i)
			fed++
			s = next[int(s&stateMask)+spaceCls]
			continue // a pattern never ends with a space
		case bkMulti:
			if m, drop := multiByteSep(text, i); m > 0 {
				if drop || space {
					i += m - 1
					continue
				}
				space = true
				sc.ringOff[uint8(fed)] = int32(i)
				fed++
				s = next[int(s&stateMask)+spaceCls]
				i += m - 1
				continue
			}
			if f := foldLatin1(text, i); f != 0 {
				c = f // "á" is fed as "a"; a match ending here ends after both bytes
				i++
			}
		}
		if space {
			words++
			space = false
		}
		sc.ringOff[uint8(fed)] = int32(off)
		fed++
		s = next[int(s&stateMask)+int(a.classOf[c])]
		if s&outFlag == 0 {
			continue
		}
		if s&rbFlag != 0 && i+1 < len(text) && !boundaryAfter(text, i+1) {
			continue // inside a word: no output here can match
		}
		for t := (s & stateMask) / int32(n); t >= 0; t = a.dict[t] {
			pi := a.out[t]
			if pi < 0 {
				continue
			}
			p := &a.patterns[pi]
			l := len(p.norm)
			if l > fed {
				continue
			}
			k := uint8(fed - l) // fed-l >= 0; uint8 is mod ringSize
			start := int(sc.ringOff[k])
			end := i + 1
			if p.wordAtL && start > 0 && !boundaryBefore(text, start) {
				continue
			}
			if p.wordAtR && end < len(text) && !boundaryAfter(text, end) {
				continue
			}
			dst = append(dst, rawMatch{pat: pi, start: int32(start), end: int32(end), w0: words - p.spaces, w1: words})
		}
	}
	return dst
}

// boundaryBefore reports whether the byte before text[i] ends a word.
func boundaryBefore(text string, i int) bool {
	b := text[i-1]
	if !isWordByte(b) {
		return true
	}
	if i >= 3 && text[i-3] == 0xE2 && text[i-2] == 0x80 && (b == 0x93 || b == 0x94 || b == 0x99) {
		return true
	}
	if i >= 2 && text[i-2] == 0xC2 && b == 0xA0 {
		return true
	}
	return false
}

// boundaryAfter reports whether text[i] starts a non-word.
func boundaryAfter(text string, i int) bool {
	if !isWordByte(text[i]) {
		return true
	}
	n, _ := multiByteSep(text, i)
	return n > 0
}

// selectLongest keeps, from matches sorted by end offset, the leftmost-longest
// non-overlapping ones, sorted by start. It reuses ms.
func selectLongest(ms []rawMatch) []rawMatch {
	if len(ms) < 2 {
		return ms
	}
	// Insertion sort by (start asc, length desc): inputs are nearly sorted.
	for i := 1; i < len(ms); i++ {
		x := ms[i]
		j := i - 1
		for j >= 0 && (ms[j].start > x.start || ms[j].start == x.start && ms[j].end < x.end) {
			ms[j+1] = ms[j]
			j--
		}
		ms[j+1] = x
	}
	out := ms[:0]
	lastEnd := int32(-1)
	for _, m := range ms {
		if m.start >= lastEnd {
			out = append(out, m)
			lastEnd = m.end
		}
	}
	return out
}
