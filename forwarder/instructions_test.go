package forwarder

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"

	"github.com/resultgate/resultgate/hl7"
	"github.com/resultgate/resultgate/internal/testutil"
	"github.com/resultgate/resultgate/router/bus"
)

// twoOrders is a synthetic ORU^R01 with two order groups, the first with two
// NTEs of its own.
const twoOrders = "MSH|^~\\&|LAB|HOSP|PORTAL|HOSP|20260101120000||ORU^R01^ORU_R01|CTL1|P|2.5.1\r" +
	"PID|1||TEST1^^^HOSP^MR||TEST^PATIENT\r" +
	"OBR|1||F1|88305^Surgical pathology^CPT|||20260101110000||||||||||||||||F\r" +
	"NTE|1|L|Specimen received in formalin\r" +
	"NTE|2|L|Second lab comment\r" +
	"OBX|1|TX|22637-3^Path report^LN||Benign tissue||||||F\r" +
	"OBR|2||F2|2345-7^Glucose^LN|||20260101110000||||||||||||||||F\r" +
	"OBX|1|NM|2345-7^Glucose^LN||95|mg/dL|70-99||||F\r"

var releasedAt = time.Date(2026, 12, 7, 21, 30, 15, 0, time.UTC)

func sampleInstructions(note string) Instructions {
	return Instructions{
		Notify: "quiet", Note: note, Path: "acknowledged", Reason: "reviewed | discussed by phone",
		Actor: "dr.who", Role: "clinician", ReleasedAt: releasedAt, HoldID: "h-0001",
	}
}

// removeAdded returns out without the segments AddInstructions added (the
// NTEs with source O and the Z-segment seg), to compare with the original.
func removeAdded(t *testing.T, out []byte, fs byte, seg string) []byte {
	t.Helper()
	var keep []byte
	for _, l := range splitLines(out, fs) {
		text := out[l.start:l.end]
		if bytes.HasPrefix(text, []byte("NTE"+string(fs))) && bytes.Contains(text, []byte(string(fs)+"O"+string(fs))) ||
			bytes.HasPrefix(text, []byte(seg+string(fs))) {
			continue
		}
		keep = append(keep, out[l.start:l.next]...)
	}
	return keep
}

// nteOf reads the NTEs of a parsed message as (set ID, source, text, type).
func nteOf(m *hl7.Message) [][4]string {
	var out [][4]string
	for _, s := range m.All("NTE") {
		out = append(out, [4]string{s.Field(1).Value(), s.Field(2).Value(), strings.Join(s.Field(3).Values(), "\n"), s.Field(4).Component(1)})
	}
	return out
}

func zFields(t *testing.T, m *hl7.Message, seg string) []string {
	t.Helper()
	all := m.All(seg)
	if len(all) == 0 {
		t.Fatalf("no %s segment", seg)
	}
	z := all[len(all)-1]
	if z.Index() != m.NumSegments()-1 {
		t.Errorf("%s is segment %d of %d, want the last", seg, z.Index()+1, m.NumSegments())
	}
	var f []string
	for i := 1; i <= 8; i++ {
		f = append(f, z.Field(i).Value())
	}
	return f
}

func TestAddInstructionsStandardDelimiters(t *testing.T) {
	note := "Your doctor has reviewed this result.\nCall 555-0100 | ask for \"results\" ^ ~ \\ & today."
	in := sampleInstructions(note)
	out, replaced, err := AddInstructions([]byte(twoOrders), in, "ZRG")
	if err != nil || replaced != 0 {
		t.Fatalf("AddInstructions: %v (replaced %d)", err, replaced)
	}
	if got := removeAdded(t, out, '|', "ZRG"); string(got) != twoOrders {
		t.Errorf("original segments changed:\n got %q\nwant %q", got, twoOrders)
	}
	m, err := hl7.Parse(out)
	if err != nil {
		t.Fatalf("forwarded message does not parse: %v\n%q", err, out)
	}
	if len(m.Notes()) != 0 {
		t.Errorf("parser needed lenient readings: %v", m.Notes())
	}
	names := []string{}
	for _, s := range m.Segments() {
		names = append(names, s.Name())
	}
	if got, want := strings.Join(names, " "), "MSH PID OBR NTE NTE NTE OBX OBR NTE OBX ZRG"; got != want {
		t.Errorf("segments = %s, want %s", got, want)
	}
	want := [][4]string{
		{"1", "L", "Specimen received in formalin", ""},
		{"2", "L", "Second lab comment", ""},
		{"3", "O", note, "PI"},
		{"1", "O", note, "PI"},
	}
	if got := nteOf(m); len(got) != len(want) {
		t.Fatalf("NTEs = %q, want %q", got, want)
	} else {
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("NTE %d = %q, want %q", i, got[i], want[i])
			}
		}
	}
	if !bytes.Contains(out, []byte(`today.|PI^Patient Instructions^HL70364`+"\r")) ||
		!bytes.Contains(out, []byte(`result.\.br\Call 555-0100 \F\ ask for "results" \S\ \R\ \E\ \T\ today.`)) {
		t.Errorf("note not escaped as FT with \\.br\\:\n%q", out)
	}
	z := zFields(t, m, "ZRG")
	wantZ := []string{"quiet", "acknowledged", "dr.who", "clinician", "20261207213015+0000", "h-0001", "", "reviewed | discussed by phone"}
	if strings.Join(z, "\x00") != strings.Join(wantZ, "\x00") {
		t.Errorf("ZRG = %q, want %q", z, wantZ)
	}
	// MSH is untouched: same control ID, same bytes up to the first CR.
	if !bytes.HasPrefix(out, []byte(twoOrders[:strings.IndexByte(twoOrders, '\r')+1])) {
		t.Error("MSH changed")
	}
	// Applying it twice adds nothing more.
	again, _, err := AddInstructions(out, in, "ZRG")
	if err != nil || !bytes.Equal(again, out) {
		t.Errorf("second AddInstructions changed the message (%v):\n%q\n%q", err, out, again)
	}
}

func TestAddInstructionsOtherDelimiters(t *testing.T) {
	// Field !, component @, repetition #, escape $, subcomponent %, and the
	// v2.7 truncation character *.
	raw := "MSH!@#$%*!LAB!HOSP!PORTAL!HOSP!20260101120000!!ORU@R01@ORU_R01!CTL2!P!2.7\n" +
		"PID!1!!TEST2@@@HOSP@MR!!TEST@PATIENT\n" +
		"OBR!1!!F9!2345-7@Glucose@LN\n" +
		"OBX!1!NM!2345-7@Glucose@LN!!95" // no final terminator
	note := "Result ready! 50% @ home # $5 * and | bars ^ too"
	in := sampleInstructions(note)
	in.Reason = "a!b@c"
	out, _, err := AddInstructions([]byte(raw), in, "ZRX")
	if err != nil {
		t.Fatal(err)
	}
	// The original bytes, LF terminators included, come first and unchanged,
	// except the CR the unterminated last segment needs before a new one.
	wantPrefix := strings.Replace(raw, "OBR!1!!F9!2345-7@Glucose@LN\n", "OBR!1!!F9!2345-7@Glucose@LN\n"+
		"NTE!1!O!Result ready$F$ 50$T$ $S$ home $R$ $E$5 $P$ and | bars ^ too!PI@Patient Instructions@HL70364\r", 1) + "\r"
	if !bytes.HasPrefix(out, []byte(wantPrefix)) {
		t.Fatalf("out =\n%q\nwant prefix\n%q", out, wantPrefix)
	}
	m, err := hl7.Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	if got := nteOf(m); len(got) != 1 || got[0] != [4]string{"1", "O", note, "PI"} {
		t.Errorf("NTEs = %q", got)
	}
	if z := zFields(t, m, "ZRX"); z[7] != "a!b@c" || z[0] != "quiet" {
		t.Errorf("ZRX = %q", z)
	}
}

func TestAddInstructionsRetraction(t *testing.T) {
	revision := "This result is being revised. Your care team will contact you."
	// As router/pipeline synthesises a retraction: values emptied, status D,
	// the revision note in an NTE after the OBR, MSH-10 suffixed.
	raw := "MSH|^~\\&|LAB|HOSP|PORTAL|HOSP|20260101120000||ORU^R01^ORU_R01|CTL3-RETRACT|P|2.5.1\r" +
		"PID|1||TEST3^^^HOSP^MR||TEST^PATIENT\r" +
		"OBR|1||F3|88305^Surgical pathology^CPT|||20260101110000||||||||||||||||C\r" +
		"NTE|1||" + hl7.Escape(revision, hl7.DefaultDelimiters) + "\r" +
		"OBX|1|TX|22637-3^Path report^LN||||||||D\r"
	h := nats.Header{}
	h.Set(bus.HeaderHoldID, "h-0003")
	h.Set(bus.HeaderReleasePath, "retraction")
	h.Set(bus.HeaderReleaseReason, url.PathEscape("corrected by the sender; the correction is held"))
	h.Set(bus.HeaderReleaseActor, "resultgate")
	h.Set(bus.HeaderReleaseRole, "system")
	h.Set(bus.HeaderReleasedAt, releasedAt.Add(1500*time.Millisecond).Format(time.RFC3339Nano))
	h.Set(bus.HeaderNotify, "quiet")
	h.Set(bus.HeaderNote, url.PathEscape(revision))
	h.Set(bus.HeaderRetracts, "h-0002")
	in, err := InstructionsFromHeader(h)
	if err != nil {
		t.Fatal(err)
	}
	out, _, err := AddInstructions([]byte(raw), in, "ZRG")
	if err != nil {
		t.Fatal(err)
	}
	if want := raw + "ZRG|quiet|retraction|resultgate|system|20261207213016+0000|h-0003|h-0002|corrected by the sender; the correction is held\r"; string(out) != want {
		t.Errorf("retraction:\n got %q\nwant %q", out, want)
	}
}

func TestAddInstructionsCharacterSets(t *testing.T) {
	base := "MSH|^~\\&|LAB|HOSP|PORTAL|HOSP|20260101120000||ORU^R01^ORU_R01|CTL4|P|2.5.1||||||%s\r" +
		"PID|1||TEST4^^^HOSP^MR||TEST^PATIENT\rOBR|1||F4|2345-7^Glucose^LN\rOBX|1|NM|2345-7^Glucose^LN||95\r"
	note := "Su médico revisó el resultado – 5 €"
	for _, tc := range []struct {
		name, msh18 string
		wantNote    string // as the parser reads the forwarded message
		wantBytes   string // the note's bytes on the wire
		replaced    int
	}{
		{"no MSH-18 (UTF-8)", "", note, note, 0},
		{"UTF-8", "UNICODE UTF-8", note, note, 0},
		{"8859/1", "8859/1", "Su médico revisó el resultado ? 5 ?", "Su m\xe9dico revis\xf3 el resultado ? 5 ?", 2},
		{"8859/15", "8859/15", "Su médico revisó el resultado ? 5 €", "Su m\xe9dico revis\xf3 el resultado ? 5 \xa4", 1},
		{"ASCII", "ASCII", "Su m?dico revis? el resultado ? 5 ?", "Su m?dico revis? el resultado ? 5 ?", 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := strings.Replace(base, "%s", tc.msh18, 1)
			out, replaced, err := AddInstructions([]byte(raw), sampleInstructions(note), "ZRG")
			if err != nil {
				t.Fatal(err)
			}
			if replaced != tc.replaced {
				t.Errorf("replaced = %d, want %d", replaced, tc.replaced)
			}
			if !bytes.Contains(out, []byte("|O|"+tc.wantBytes+"|PI^")) {
				t.Errorf("note bytes not %q in\n%q", tc.wantBytes, out)
			}
			m, err := hl7.ParseWithOptions(out, hl7.ParseOptions{Strict: true})
			if err != nil {
				t.Fatalf("forwarded message does not parse strictly: %v", err)
			}
			if got := nteOf(m); len(got) != 1 || got[0][2] != tc.wantNote {
				t.Errorf("NTE = %q, want note %q", got, tc.wantNote)
			}
			// A note the set makes lossy is still recognised as already there.
			if again, _, err := AddInstructions(out, sampleInstructions(note), "ZRG"); err != nil || !bytes.Equal(again, out) {
				t.Errorf("second application changed the message (%v)", err)
			}
		})
	}
}

func TestAddInstructionsEdgeCases(t *testing.T) {
	t.Run("control characters and framing bytes are escaped", func(t *testing.T) {
		in := sampleInstructions("a\x0bb\x1cc\x00d\te")
		out, _, err := AddInstructions([]byte(twoOrders), in, "ZRG")
		if err != nil {
			t.Fatal(err)
		}
		if bytes.ContainsAny(out, "\x0b\x1c\x00\t") {
			t.Errorf("raw control characters in %q", out)
		}
		if !bytes.Contains(out, []byte(`|O|a\X0B\b\X1C\c\X00\d\X09\e|`)) {
			t.Errorf("controls not escaped as \\Xhh\\: %q", out)
		}
	})
	t.Run("no escape character", func(t *testing.T) {
		raw := "MSH|^~|LAB|HOSP|PORTAL|HOSP|20260101120000||ORU^R01|CTL5|P|2.3\rOBR|1||F5\rOBX|1|NM|X||1\r"
		out, _, err := AddInstructions([]byte(raw), sampleInstructions("x|y^z\nw"), "ZRG")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(out, []byte("NTE|1|O|x y z w|PI^Patient Instructions^HL70364\r")) {
			t.Errorf("out = %q", out)
		}
	})
	t.Run("a sender's own ZRG stays and ours comes last", func(t *testing.T) {
		raw := twoOrders + "ZRG|sender|own|segment\r"
		out, _, err := AddInstructions([]byte(raw), Instructions{Notify: "push", Path: "immediate", HoldID: "h-9"}, "ZRG")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(string(out), "ZRG|sender|own|segment\rZRG|push|immediate||||h-9||\r") {
			t.Errorf("out ends %q", out[len(out)-60:])
		}
		if bytes.Count(out, []byte("|O|")) != 0 {
			t.Error("an NTE was added without a note")
		}
	})
	t.Run("no instructions leaves the bytes alone", func(t *testing.T) {
		out, _, err := AddInstructions([]byte(twoOrders), Instructions{}, "ZRG")
		if err != nil || string(out) != twoOrders {
			t.Errorf("out = %q, %v", out, err)
		}
	})
	t.Run("a message without OBR has the note before the Z-segment", func(t *testing.T) {
		raw := "MSH|^~\\&|LAB|HOSP|PORTAL|HOSP|20260101120000||ORU^R01|CTL6|P|2.5.1\rPID|1||X^^^H^MR\r\n\r\n"
		out, _, err := AddInstructions([]byte(raw), sampleInstructions("n"), "ZRG")
		if err != nil {
			t.Fatal(err)
		}
		if want := raw + "NTE|1|O|n|PI^Patient Instructions^HL70364\rZRG|"; !strings.HasPrefix(string(out), want) {
			t.Errorf("out = %q", out)
		}
	})
	t.Run("a byte order mark before MSH", func(t *testing.T) {
		raw := "\xef\xbb\xbf" + twoOrders
		out, _, err := AddInstructions([]byte(raw), sampleInstructions("n"), "ZRG")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(out), "\xef\xbb\xbfMSH|") || bytes.Count(out, []byte("|O|n|PI^")) != 2 {
			t.Errorf("out = %q", out)
		}
	})
	t.Run("bad note header", func(t *testing.T) {
		h := nats.Header{}
		h.Set(bus.HeaderNote, "50%zz")
		if _, err := InstructionsFromHeader(h); !errors.Is(err, ErrInstructions) || strings.Contains(err.Error(), "zz") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("not HL7", func(t *testing.T) {
		if _, _, err := AddInstructions([]byte("hello"), sampleInstructions("n"), "ZRG"); !errors.Is(err, ErrInstructions) {
			t.Errorf("err = %v", err)
		}
	})
}

// FuzzAddInstructions checks, for any message that parses and any note and
// reason: the result parses; its segments are the original ones (same raw
// text, same order) with only NTEs and the Z-segment added, the Z-segment
// last; ZRG-8 reads back as the reason and every added NTE's comment as the
// note whenever the message can carry them exactly (an escape character in
// MSH-2, UTF-8, no control characters but line breaks); no MLLP framing
// byte is added; and a second application changes nothing.
func FuzzAddInstructions(f *testing.F) {
	f.Add([]byte(twoOrders), "Your result.\nCall us | today ^ ~ & \\", "reviewed")
	f.Add([]byte("MSH!@#$%*!A!B!C!D!1!!ORU@R01!X!P!2.7\nOBR!1\nNTE!1!L!x\r\nOBX!1"), "n!@#$%*", "r")
	f.Add([]byte("MSH|^~|A|B|C|D|1||ORU^R01|X|P|2.3\rOBR|1\rZRG|a\r"), "a|b", "")
	f.Add([]byte("MSH|^~\\&|A|B|C|D|1||ORU^R01|X|P|2.5||||||8859/1\rOBR|1\rNTE|1||caf\xe9\r"), "café", "€")
	f.Add([]byte("\xef\xbb\xbf\r\nMSH|^~\\&|A|B|C|D|1||ORU^R01|X|P|2.5\rPID|1\r"), "n", "r")
	f.Fuzz(func(t *testing.T, raw []byte, note, reason string) {
		m, err := hl7.Parse(raw)
		if err != nil {
			return
		}
		in := Instructions{Notify: "quiet", Note: note, Path: "deadline", Reason: reason, HoldID: "h1", ReleasedAt: releasedAt}
		out, _, err := AddInstructions(raw, in, "ZRG")
		if err != nil {
			t.Fatalf("AddInstructions on a message that parses: %v", err)
		}
		om, err := hl7.Parse(out)
		if err != nil {
			t.Fatalf("result does not parse: %v\n%q", err, out)
		}
		if bytes.Count(out, []byte{0x0b})+bytes.Count(out, []byte{0x1c}) != bytes.Count(raw, []byte{0x0b})+bytes.Count(raw, []byte{0x1c}) {
			t.Fatalf("framing bytes added: %q", out)
		}
		orig, got := m.Segments(), om.Segments()
		j := 0
		var added []*hl7.Segment
		for _, s := range got {
			if j < len(orig) && s.Raw() == orig[j].Raw() {
				j++
				continue
			}
			if s.Name() != "NTE" && s.Name() != "ZRG" {
				t.Fatalf("segment %q added or changed", s.Raw())
			}
			added = append(added, s)
		}
		if j != len(orig) {
			t.Fatalf("original segment %d (%q) missing or changed", j, orig[j].Raw())
		}
		if last := got[len(got)-1]; last.Name() != "ZRG" {
			t.Fatalf("last segment is %s", last.Name())
		}
		d := m.Delimiters()
		// Exact only where every escape sequence can be written: no
		// delimiter is one of the characters the sequences are made of.
		exact := d.Escape != 0 && !strings.ContainsAny("FSTREPX0123456789ABCDEF.br", string([]byte{d.Field, d.Component, d.Subcomponent, d.Repetition, d.Truncation})) &&
			(m.Charset() == hl7.CharsetUTF8 || m.Charset() == hl7.CharsetASCII) &&
			utf8.ValidString(note) && utf8.ValidString(reason) && !hasControl(reason) &&
			!hasControl(strings.NewReplacer("\r", "", "\n", "").Replace(note)) && !strings.ContainsRune(note+reason, 0x7f)
		if exact {
			for _, s := range added {
				switch {
				case s.Name() == "ZRG" && s.Index() == len(got)-1:
					if v := s.Field(8).Value(); v != reason {
						t.Errorf("ZRG-8 = %q, want %q", v, reason)
					}
				case s.Name() == "NTE":
					if v := strings.Join(s.Field(3).Values(), "\n"); v != normalizeBreaks(note) {
						t.Errorf("NTE-3 = %q, want %q", v, note)
					}
				}
			}
		}
		again, _, err := AddInstructions(out, in, "ZRG")
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("second application changed the message (%v):\n%q\n%q", err, out, again)
		}
	})
}

func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 {
			return true
		}
	}
	return false
}

// BenchmarkAddInstructions measures the forwarder's per-message rewrite: the
// two-order message of these tests and the repository's v2.5.1 ORU fixture,
// with a 200-character Spanish note and every ZRG field set.
func BenchmarkAddInstructions(b *testing.B) {
	fixture, err := os.ReadFile(filepath.Join(testutil.RepoRoot(b), "testdata", "hl7", "oru_r01_v251.hl7"))
	if err != nil {
		b.Fatal(err)
	}
	note := "Este resultado contiene hallazgos importantes. Su equipo de atención se comunicará con usted para hablar de lo que significa y de los próximos pasos. Quizás prefiera esperar."
	in := sampleInstructions(note)
	in.Retracts = "h-0000"
	for _, bc := range []struct {
		name string
		raw  []byte
	}{{"two-orders", []byte(twoOrders)}, {"oru_r01_v251", fixture}} {
		b.Run(fmt.Sprintf("%s/%dB", bc.name, len(bc.raw)), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.raw)))
			for b.Loop() {
				if _, _, err := AddInstructions(bc.raw, in, "ZRG"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestAddInstructionsFixtureWithOwnZRG runs the repository's v2.5.1 fixture,
// whose sender already uses a ZRG of its own (a local segment) and NTEs on
// both OBR and OBX, through AddInstructions.
func TestAddInstructionsFixtureWithOwnZRG(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(testutil.RepoRoot(t), "testdata", "hl7", "oru_r01_v251.hl7"))
	if err != nil {
		t.Fatal(err)
	}
	out, _, err := AddInstructions(raw, sampleInstructions("Nota"), "ZRG")
	if err != nil {
		t.Fatal(err)
	}
	m, err := hl7.Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range m.Segments() {
		n := s.Name()
		if n == "NTE" && s.Field(2).Value() == "O" {
			n = "NTE(O," + s.Field(1).Value() + ")"
		}
		names = append(names, n)
	}
	want := "MSH SFT PID PV1 ORC OBR NTE NTE(O,2) OBX NTE OBX OBX OBX SPM OBX OBR NTE(O,1) OBX OBX NTE ZRG ZRG"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("segments\n%s\nwant\n%s", got, want)
	}
	zs := m.All("ZRG")
	if zs[0].Raw() != "ZRG|1|custom local segment" || zs[1].Field(1).Value() != "quiet" || zs[1].Field(6).Value() != "h-0001" {
		t.Errorf("ZRGs: %q, %q", zs[0].Raw(), zs[1].Raw())
	}
}
