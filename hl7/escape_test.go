package hl7

import (
	"strings"
	"testing"
)

func TestUnescape(t *testing.T) {
	d := Delimiters{'|', '^', '~', '\\', '&', '#'}
	tests := []struct {
		name, in, plain, keep string
	}{
		{"no escapes", "plain text", "plain text", "plain text"},
		{"field separator", `a\F\b`, "a|b", "a|b"},
		{"component separator", `x10\S\9/L`, "x10^9/L", "x10^9/L"},
		{"subcomponent separator", `A\T\B`, "A&B", "A&B"},
		{"repetition separator", `1\R\2`, "1~2", "1~2"},
		{"escape character", `C:\E\dir`, `C:\dir`, `C:\dir`},
		{"truncation character", `abc\P\`, "abc#", "abc#"},
		{"escaped escape before hex stays literal", `\E\X0A\E\`, `\X0A\`, `\X0A\`},
		{"hex CR LF", `line1\X0D0A\line2`, "line1\r\nline2", "line1\r\nline2"},
		{"hex separate", `a\X0D\\X0A\b`, "a\r\nb", "a\r\nb"},
		{"hex lower case", `\x41\`, "A", "A"},
		{"hex UTF-8 bytes", `caf\XC3A9\`, "café", "café"},
		{"hex Latin-1 byte", `caf\XE9\`, "café", "café"},
		{"hex odd digits kept", `\X123\`, `\X123\`, `\X123\`},
		{"hex non-hex kept", `\XZZ\`, `\XZZ\`, `\XZZ\`},
		{"line break", `one\.br\two`, "one\ntwo", `one\.br\two`},
		{"space lines default", `a\.sp\b`, "a\nb", `a\.sp\b`},
		{"space lines count", `a\.sp3\b`, "a\n\n\nb", `a\.sp3\b`},
		{"space lines count with space and plus", `a\.sp +2\b`, "a\n\nb", `a\.sp +2\b`},
		{"skip spaces", `a\.sk4\b`, "a    b", `a\.sk4\b`},
		{"skip default", `a\.sk\b`, "a b", `a\.sk\b`},
		{"indent removed", `\.in+4\text`, "text", `\.in+4\text`},
		{"temporary indent removed", `\.ti-2\text`, "text", `\.ti-2\text`},
		{"centre", `title\.ce\body`, "title\nbody", `title\.ce\body`},
		{"fill and no-fill removed", `\.nf\col1  col2\.fi\`, "col1  col2", `\.nf\col1  col2\.fi\`},
		{"highlight removed", `normal \H\bold\N\ normal`, "normal bold normal", `normal \H\bold\N\ normal`},
		{"character set switch removed", `\C2842\text\C2B42\`, "text", `\C2842\text\C2B42\`},
		{"multibyte switch removed", `\M2442\x\M242842\`, "x", `\M2442\x\M242842\`},
		{"local escape removed", `a\Z1234\b`, "ab", `a\Z1234\b`},
		{"unknown escape kept", `\Q\`, `\Q\`, `\Q\`},
		{"empty escape kept", `a\\b`, `a\\b`, `a\\b`},
		{"lone escape kept", `C:\temp`, `C:\temp`, `C:\temp`},
		{"trailing escape kept", `abc\`, `abc\`, `abc\`},
		{"unknown format command kept", `\.xx\`, `\.xx\`, `\.xx\`},
		{"format with bad argument kept", `\.spX\`, `\.spX\`, `\.spX\`},
		{"br with argument kept", `\.br2\`, `\.br2\`, `\.br2\`},
		{"unknown then valid", `\a\F\`, `\a|`, `\a|`},
		{"huge space count capped", `\.sp99999\`, strings.Repeat("\n", 100), `\.sp99999\`},
		{"sequence", `\H\Result\N\:\.br\x10\S\9/L \T\ 5\F\6`, "Result:\nx10^9/L & 5|6", `\H\Result\N\:\.br\x10^9/L & 5|6`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Unescape(tt.in, d); got != tt.plain {
				t.Errorf("Unescape(%q) = %q, want %q", tt.in, got, tt.plain)
			}
			if got := UnescapeWith(tt.in, d, UnescapeOptions{KeepFormatting: true}); got != tt.keep {
				t.Errorf("KeepFormatting(%q) = %q, want %q", tt.in, got, tt.keep)
			}
		})
	}
}

func TestUnescapeMissingDelimiters(t *testing.T) {
	d := Delimiters{Field: '|', Component: '^', Repetition: '~', Escape: '\\'} // no subcomponent, no truncation
	if got := Unescape(`a\T\b\P\`, d); got != `a\T\b\P\` {
		t.Errorf("escapes for absent delimiters must stay literal, got %q", got)
	}
	if got := Unescape(`a\F\b`, Delimiters{Field: '|', Component: '^'}); got != `a\F\b` {
		t.Errorf("without an escape character nothing is decoded, got %q", got)
	}
	custom := Delimiters{'!', '$', 'r', '?', '@', 0}
	if got := Unescape(`a?F?b?S?c?R?d?E?e?T?f`, custom); got != `a!b$crd?e@f` {
		t.Errorf("custom delimiters: %q", got)
	}
}

func TestEscape(t *testing.T) {
	d := Delimiters{'|', '^', '~', '\\', '&', '#'}
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{"a|b^c~d\\e&f#g", `a\F\b\S\c\R\d\E\e\T\f\P\g`},
		{"two\r\nlines", `two\X0D\\X0A\lines`},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got := Escape(tt.in, d)
			if got != tt.want {
				t.Errorf("Escape(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if back := Unescape(got, d); back != tt.in {
				t.Errorf("round trip: %q -> %q -> %q", tt.in, got, back)
			}
		})
	}
	four := DefaultDelimiters
	if got := Escape("a#b", four); got != "a#b" {
		t.Errorf("# is plain without a truncation character: %q", got)
	}
	if got := Escape("a|b\nc", Delimiters{Field: '|', Component: '^'}); got != "a|b c" {
		t.Errorf("without an escape character: %q", got)
	}
}

func TestFieldUnescapesPerComponent(t *testing.T) {
	m := mustParse(t, msg(`MSH|^~\&|A|B|||1||ORU^R01|1|P|2.5`, `OBX|1|CWE|X||a\S\b^c\T\d&e`))
	f := m.First("OBX").Field(5)
	if f.Component(1) != "a^b" || f.Component(2) != "c&d&e" || f.Sub(2, 1) != "c&d" || f.Sub(2, 2) != "e" {
		t.Errorf("got %q %q %q %q", f.Component(1), f.Component(2), f.Sub(2, 1), f.Sub(2, 2))
	}
	if f.Components() != 2 || f.Subcomponents(2) != 2 {
		t.Errorf("escaped separators must not count: %d %d", f.Components(), f.Subcomponents(2))
	}
}
