package hl7

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
)

// TestBlockMasks checks blockMasks (assembly where there is one) against
// blockMasksGeneric on random blocks rich in delimiters, line ends and
// spaces, for the default delimiters, others, and a message without a
// subcomponent separator.
func TestBlockMasks(t *testing.T) { checkBlockMasks(t) }

func checkBlockMasks(t *testing.T) {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte("|^~\\&#*@!$ \r\nAZaz09\x00\xff\x80")
	for _, d := range []Delimiters{
		DefaultDelimiters,
		{Field: '#', Component: '*', Repetition: '@', Escape: '!', Subcomponent: '$'},
		{Field: '|', Component: '^', Repetition: '~', Escape: '\\'},
	} {
		vt := newVecTab(d)
		buf := make([]byte, 64+7)
		for n := 0; n < 20000; n++ {
			for k := range buf {
				buf[k] = alphabet[rng.IntN(len(alphabet))]
			}
			off := n % 8 // unaligned starts
			var got, want blockMask
			blockMasks(&buf[off], &vt, &got)
			blockMasksGeneric(&buf[off], &vt, &want)
			if got != want {
				t.Fatalf("%q under %q: blockMasks %+v, want %+v", buf[off:off+64], d.EncodingCharacters(), got, want)
			}
		}
	}
}

// blockInputs returns messages whose lines are long enough for the block
// reading: random fields with every delimiter, escapes, empty fields, fields
// that start with a space (the joined-segment check), separators and line
// ends on every position of a block, CRLF and LF terminators, continuation
// lines, and the same under other delimiters.
func blockInputs() map[string][]byte {
	rng := rand.New(rand.NewPCG(3, 4))
	in := map[string][]byte{}
	pieces := []string{"", "A", "ab", "x^y", "a~b", "c&d", `\F\`, `\.br\`, " sp", " 1", "1234567", "^^", "~", "&", `\`, "long value with words"}
	for n := 0; n < 300; n++ {
		fs, comp, rep, esc, sub := "|", "^", "~", `\`, "&"
		if n%5 == 4 {
			fs, comp, rep, esc, sub = "#", "*", "@", "!", "$"
		}
		var b strings.Builder
		b.WriteString("MSH" + fs + comp + rep + esc + sub + fs + "A" + fs + "B" + fs + fs + fs + "1" + fs + fs + "ORU" + comp + "R01" + fs + fmt.Sprint(n) + fs + "P" + fs + "2.5")
		eol := []string{"\r", "\n", "\r\n"}[n%3]
		for s := 0; s < 1+rng.IntN(12); s++ {
			b.WriteString(eol)
			if rng.IntN(6) == 0 {
				b.WriteString("continued text " + strings.Repeat("y", rng.IntN(70)))
			} else {
				b.WriteString([]string{"OBX", "PID", "NTE", "ZRG"}[rng.IntN(4)])
			}
			for f := 0; f < rng.IntN(40); f++ {
				b.WriteString(fs)
				p := pieces[rng.IntN(len(pieces))]
				if rng.IntN(300) == 0 {
					p = " OBX" // segments joined without a terminator, when a separator follows
				}
				p = strings.NewReplacer("|", fs, "^", comp, "~", rep, `\`, esc, "&", sub).Replace(p)
				b.WriteString(p)
				if rng.IntN(4) == 0 {
					b.WriteString(strings.Repeat("z", rng.IntN(80)))
				}
			}
		}
		in[fmt.Sprint("random", n)] = []byte(b.String())
	}
	// A separator followed by " OBX|" on every position of a block: the
	// space may be the first byte of the next block.
	for k := 0; k < 70; k++ {
		in[fmt.Sprint("joined", k)] = []byte("MSH|^~\\&|A\rOBX|" + strings.Repeat("a", k) + "| OBX|1\r")
		in[fmt.Sprint("spaced", k)] = []byte("MSH|^~\\&|A\rOBX|" + strings.Repeat("a", k) + "| OB|1\r")
	}
	return in
}

// TestBlockScanReadsTheSame parses every index input and the block inputs
// with the block reading and byte by byte, and checks that the index, every
// reading and every error (the joined-segment check) are the same.
func TestBlockScanReadsTheSame(t *testing.T) {
	if !useBlocks {
		t.Skip("no block reading on this architecture")
	}
	inputs := indexInputs(t)
	for name, b := range blockInputs() {
		inputs[name] = b
	}
	read := func(name string, data []byte) string {
		m, err := Parse(data)
		if err != nil {
			return "error: " + err.Error()
		}
		checkIndex(t, name, m)
		return dumpFields(m)
	}
	want := map[string]string{}
	errs := 0
	for name, data := range inputs {
		want[name] = read(name, data)
		if strings.HasPrefix(want[name], "error: ") {
			errs++
		}
	}
	if errs < 70 || len(inputs)-errs < 300 {
		t.Fatalf("%d of %d inputs fail to parse; want the 70 joined segments and a few random ones, not most", errs, len(inputs))
	}
	useBlocks = false
	t.Cleanup(func() { useBlocks = haveBlockMasks })
	for name, data := range inputs {
		if got := read(name, data); got != want[name] {
			t.Errorf("%s: the block reading differs from the byte reading:\n%s\nwant:\n%s", name, want[name], got)
		}
	}
}

// TestLongSegmentIndex checks the switch from the 16-bit index to the 32-bit
// one: a segment one byte short of compactSegment keeps the 16-bit index, one
// of compactSegment bytes or more (on one line, or wrapped over continuation
// lines) makes split start again with 32-bit entries, and in every case the
// fields match a naive split, the notes are not doubled, and a message that
// is long only in total keeps the 16-bit index.
func TestLongSegmentIndex(t *testing.T) {
	head := "MSH|^~\\&|A|B|||1||ORU^R01|1|P|2.5\rPID|1||M^^^H^MR\r"
	obx := func(n int) string { // an OBX segment of exactly n bytes
		s := "OBX|1|TX|C^D||"
		return s + strings.Repeat("x^", (n-len(s))/2) + strings.Repeat("y", (n-len(s))%2)
	}
	tests := []struct {
		name  string
		data  string
		wide  bool
		notes int
	}{
		{"just under", head + obx(compactSegment-1) + "\rNTE|1||z\r", false, 0},
		{"exactly", head + obx(compactSegment) + "\rNTE|1||z\r", true, 0},
		{"over, last", head + obx(compactSegment+100), true, 0},
		{"wrapped over", head + "OBX|1|TX|C||" + strings.Repeat("line of text~\r", 400) + "NTE|1||z\r", true, 33},
		{"long in total", head + strings.Repeat(obx(1000)+"\r", 20), false, 0},
		{"long MSH", "MSH|^~\\&|" + strings.Repeat("a", compactSegment) + "|B\rPID|1\r", true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse([]byte(tt.data))
			if err != nil {
				t.Fatal(err)
			}
			if wide := m.f16 == nil; wide != tt.wide {
				t.Errorf("32-bit index %t, want %t", wide, tt.wide)
			}
			if m.fsh != 4 || m.fmask != uint32(fAll) {
				t.Errorf("fsh %d, fmask %#x; want 4 and %#x", m.fsh, m.fmask, fAll)
			}
			if len(m.Notes()) != tt.notes {
				t.Errorf("%d notes, want %d: %v", len(m.Notes()), tt.notes, m.Notes())
			}
			checkIndex(t, tt.name, m)
		})
	}
}

// TestOccurrenceManyIDs checks Occurrence and Nth against a naive count for
// messages with 1 to 60 distinct segment IDs, each repeated and interleaved:
// split counts up to 24 IDs in a small table and moves to a map past that.
func TestOccurrenceManyIDs(t *testing.T) {
	for _, ids := range []int{1, 5, 24, 25, 31, 32, 33, 60} {
		var b strings.Builder
		b.WriteString("MSH|^~\\&|A\r")
		var names []string
		for r := 0; r < 3; r++ {
			for k := 0; k < ids; k++ {
				name := fmt.Sprintf("Z%c%c", 'A'+k/10, '0'+k%10)
				fmt.Fprintf(&b, "%s|%d\r", name, r)
				names = append(names, name)
			}
		}
		m, err := Parse([]byte(b.String()))
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]int{}
		for i, name := range names {
			seen[name]++
			s := m.Segment(i + 1)
			if s.Name() != name || s.Occurrence() != seen[name] {
				t.Fatalf("%d IDs: segment %d is %s occurrence %d, want %s occurrence %d", ids, i+1, s.Name(), s.Occurrence(), name, seen[name])
			}
			if m.Nth(name, seen[name]) != s {
				t.Fatalf("%d IDs: Nth(%s, %d) is not segment %d", ids, name, seen[name], i+1)
			}
		}
	}
}

// FuzzBlockScan parses any input with the block reading and byte by byte and
// checks that the results are the same (every reading, or the same error).
// The seeds include the 2 KB fixture and the hostile shapes at 4 KiB, whose
// lines are long enough for the block reading.
func FuzzBlockScan(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Add(loadFixture(f, "oru_r01_v251.hl7"))
	for _, b := range hostileSeeds() {
		f.Add(b)
	}
	for _, b := range blockInputs() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if !haveBlockMasks {
			t.Skip("no block reading on this architecture")
		}
		read := func() string {
			m, err := Parse(data)
			if err != nil {
				return "error: " + err.Error()
			}
			return dumpFields(m)
		}
		useBlocks = true
		blocks := read()
		useBlocks = false
		bytewise := read()
		useBlocks = true
		if blocks != bytewise {
			t.Fatalf("block reading:\n%s\nbyte by byte:\n%s", blocks, bytewise)
		}
	})
}

// TestLongLineAllocation checks that a large message with one huge line goes
// straight to the 32-bit index: the 16-bit pass would allocate its index (2
// bytes a field separator) and drop it at that line. A 1 MiB line of field
// separators allocates the copy and the 32-bit index (4 bytes a separator),
// 5 MiB, and not the 16-bit index's 2 MiB more.
func TestLongLineAllocation(t *testing.T) {
	data := []byte("MSH|^~\\&|A\rOBX|" + strings.Repeat("|", 1<<20))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	m, err := Parse(data)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if m.f16 != nil || m.NumSegments() != 2 || m.Segment(1).NumFields() != 1<<20+1 {
		t.Fatalf("16-bit index %t, %d segments, OBX has %d fields", m.f16 != nil, m.NumSegments(), m.Segment(1).NumFields())
	}
	if got, limit := after.TotalAlloc-before.TotalAlloc, uint64(5<<20+5<<20/10); got > limit {
		t.Errorf("parsing a 1 MiB line allocated %d bytes, want at most %d", got, limit)
	}
}
