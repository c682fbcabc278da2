package policy

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// refNorm is the text normalised as the scanner does it, with, for each
// normalised byte, where it starts and ends in the original text and the
// index of the word it belongs to.
type refNorm struct {
	b          []byte
	start, end []int
	word       []int32
}

// refNormalize is a slow, direct reading of the normalisation rules in
// lexicon.go, kept apart from the scanner's fused loop.
func refNormalize(text string) refNorm {
	var n refNorm
	space := true
	words := int32(0)
	put := func(c byte, s, e int) {
		n.b = append(n.b, c)
		n.start = append(n.start, s)
		n.end = append(n.end, e)
		n.word = append(n.word, words)
	}
	for i := 0; i < len(text); {
		c := text[i]
		if f := foldLatin1(text, i); f != 0 {
			if space {
				words++
				space = false
			}
			put(f, i, i+2)
			i += 2
			continue
		}
		if m, drop := multiByteSep(text, i); m > 0 {
			if !drop && !space {
				put(' ', i, i+m)
				space = true
			}
			i += m
			continue
		}
		switch {
		case c == '\'':
			i++
			continue
		case isSpaceLike(c):
			if !space {
				put(' ', i, i+1)
				space = true
			}
			i++
			continue
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		}
		if space {
			words++
			space = false
		}
		put(c, i, i+1)
		i++
	}
	return n
}

// refScan finds every pattern occurrence on word boundaries by searching
// the normalised text for each pattern in turn.
func refScan(a *automaton, text string) []rawMatch {
	n := refNormalize(text)
	hay := string(n.b)
	var out []rawMatch
	for pi, p := range a.patterns {
		for from := 0; ; {
			k := strings.Index(hay[from:], p.norm)
			if k < 0 {
				break
			}
			k += from
			from = k + 1
			last := k + len(p.norm) - 1
			start, end := n.start[k], n.end[last]
			if p.wordAtL && start > 0 && !boundaryBefore(text, start) {
				continue
			}
			if p.wordAtR && end < len(text) && !boundaryAfter(text, end) {
				continue
			}
			out = append(out, rawMatch{pat: int32(pi), start: int32(start), end: int32(end), w0: n.word[k], w1: n.word[last]})
		}
	}
	return out
}

func sortMatches(ms []rawMatch) {
	slices.SortFunc(ms, func(x, y rawMatch) int {
		if x.start != y.start {
			return int(x.start - y.start)
		}
		if x.end != y.end {
			return int(x.end - y.end)
		}
		return int(x.pat - y.pat)
	})
}

// TestScanMatchesReference checks the scanner (its in-word output skip, its
// word index derived from the pattern's spaces, its folding of accented
// letters) against refScan on the texts of the test data, their upper-case
// copies, and random texts of perturbed phrases and separators.
func TestScanMatchesReference(t *testing.T) {
	c, err := NewClassifier(DefaultRuleSet())
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	files, _ := filepath.Glob(filepath.Join("testdata", "classify", "*.hl7"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		texts = append(texts, strings.Split(string(data), "\r")...)
	}
	for _, hc := range loadHeldOut(t) {
		texts = append(texts, hc.text)
	}
	// Quotation marks and separators inside and around words (dropped or
	// spaces), each spelling of U+2019 and the no-break space.
	texts = append(texts, "Hodgkin’s lymphoma", "non’Hodgkin lymphoma", "Paget’s disease of the nipple",
		"no’ evidence of malignancy", "’carcinoma’", "negative for–malignancy", "Hodgkin's lymphoma")
	for _, s := range texts[:len(texts):len(texts)] {
		texts = append(texts, strings.ToUpper(s))
	}
	// Random texts: phrases of the rule set with their case, separators and
	// accents perturbed, glued by separators and word bytes.
	rng := rand.New(rand.NewPCG(16, 2026))
	pats := c.lex.patterns
	seps := []string{" ", "  ", "-", "\u2013", "\u00a0", "'", "\u2019", ",", ".", ":", "\n", "(", ")", "/", "5 ", "x", "á", "É", "\xc3", "ñ"}
	for i := 0; i < 3000; i++ {
		var b strings.Builder
		for j := rng.IntN(12); j >= 0; j-- {
			p := pats[rng.IntN(len(pats))].norm
			for k := 0; k < len(p); k++ {
				ch := p[k]
				switch r := rng.IntN(20); {
				case r == 0 && ch >= 'a' && ch <= 'z':
					ch -= 'a' - 'A'
				case r == 1 && ch == ' ':
					b.WriteString(seps[rng.IntN(len(seps))])
					continue
				case r == 2 && ch == 'a':
					b.WriteString("á")
					continue
				case r == 3 && ch == 'o':
					b.WriteString("Ó")
					continue
				}
				b.WriteByte(ch)
			}
			b.WriteString(seps[rng.IntN(len(seps))])
		}
		texts = append(texts, b.String())
	}
	var sc scanner
	for _, text := range texts {
		got := c.lex.scan(&sc, text, nil)
		want := refScan(c.lex, text)
		sortMatches(got)
		sortMatches(want)
		if !slices.Equal(got, want) {
			t.Fatalf("scan of %q:\n got %v\nwant %v", text, got, want)
		}
	}
}
