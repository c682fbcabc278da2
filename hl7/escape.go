package hl7

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// UnescapeOptions choose how Unescape treats the formatting escapes that HL7
// defines for formatted text (FT, and \H\ \N\ also for TX and CF).
type UnescapeOptions struct {
	// KeepFormatting leaves the formatting escapes (\H\ \N\ \.br\ \.sp\ \.in\
	// \.ti\ \.sk\ \.ce\ \.fi\ \.nf\) and the character-set escapes (\Cxxyy\
	// \Mxxyyzz\) and local escapes (\Zxx\) in the result exactly as written, for a
	// renderer that lays FT out itself. Delimiter escapes (\F\ \S\ \T\ \R\ \E\
	// \P\) and hex (\Xhh\) are always decoded.
	KeepFormatting bool
}

// Unescape decodes the escape sequences in s (a field, component or subcomponent
// as written in a message with delimiters d) and returns plain UTF-8 text. It is
// the decoding Field.Value, Component and Sub use.
//
// The choice made for formatting escapes, which chapter 2 defines as
// instructions for displaying FT (section "Formatted text"), is to turn them into
// their plain-text equivalent, because values go to systems that show plain text:
//
//	\F\ \S\ \T\ \R\ \E\ \P\  the field, component, subcomponent, repetition,
//	                         escape and (v2.7) truncation characters
//	\Xhhhh...\               the bytes hh hh... read as UTF-8 (\X0D\X0A\ is CR LF);
//	                         bytes that are not valid UTF-8 are read as ISO 8859-1
//	\.br\                    "\n" (line break)
//	\.sp\ \.sp n\            n line breaks (default 1)
//	\.ce\                    "\n" (the centred line starts on a new line)
//	\.sk n\                  n spaces (default 1)
//	\.in n\ \.ti n\ \.fi\ \.nf\  removed (indentation and fill mode)
//	\H\ \N\                  removed (highlighting has no plain-text form)
//	\Cxxyy\ \Mxxyyzz\        removed (ISO 2022 character-set switches; the text
//	                         between them is kept as decoded from MSH-18)
//	\Zxx...\                 removed (locally defined; meaningless here)
//
// Input that is not a well-formed escape (an escape character without a closing
// one, an unknown code, odd hex) is kept literally: senders often leave a
// backslash unescaped in text, and dropping it would change the text.
func Unescape(s string, d Delimiters) string {
	if d.Escape == 0 || indexByte(s, d.Escape) < 0 {
		return s
	}
	return unescape(s, d, UnescapeOptions{})
}

// UnescapeWith is Unescape with options.
func UnescapeWith(s string, d Delimiters, o UnescapeOptions) string {
	if d.Escape == 0 || strings.IndexByte(s, d.Escape) < 0 {
		return s
	}
	return unescape(s, d, o)
}

func unescape(s string, d Delimiters, o UnescapeOptions) string {
	b := byteBuf{b: make([]byte, 0, len(s))}
	appendUnescape(&b, s, d, o)
	return bytesToString(b.b)
}

// byteBuf is the buffer unescape decodes into: the strings.Builder methods
// decodeSeq uses, appending to a slice the caller may own (AppendValue).
type byteBuf struct{ b []byte }

func (w *byteBuf) Write(p []byte) (int, error)       { w.b = append(w.b, p...); return len(p), nil }
func (w *byteBuf) WriteByte(c byte) error            { w.b = append(w.b, c); return nil }
func (w *byteBuf) WriteString(s string) (int, error) { w.b = append(w.b, s...); return len(s), nil }
func (w *byteBuf) WriteRune(r rune) (int, error) {
	n := len(w.b)
	w.b = utf8.AppendRune(w.b, r)
	return len(w.b) - n, nil
}

// appendUnescape appends the decoding of s to b.
func appendUnescape(b *byteBuf, s string, d Delimiters, o UnescapeOptions) {
	esc := d.Escape
	for {
		i := indexByte(s, esc)
		if i < 0 {
			b.WriteString(s)
			break
		}
		b.WriteString(s[:i])
		rest := s[i+1:]
		j := indexByte(rest, esc)
		if j < 0 { // lone escape character: keep it and the rest literally
			b.WriteString(s[i:])
			break
		}
		seq := rest[:j]
		whole := s[i : i+1+j+1]
		if !decodeSeq(b, seq, whole, d, o) {
			// Unknown: keep the escape character literally and go on after it, so
			// that "C:\dir\x" survives and "\\F\" still decodes its \F\.
			b.WriteByte(esc)
			s = rest
			continue
		}
		s = rest[j+1:]
	}
}

// decodeSeq writes the decoding of one escape sequence (seq is the text between
// the escape characters, whole the sequence including them) and reports whether
// seq was recognised.
func decodeSeq(b *byteBuf, seq, whole string, d Delimiters, o UnescapeOptions) bool {
	if seq == "" {
		return false
	}
	if len(seq) == 1 {
		var c byte
		switch seq[0] {
		case 'F':
			c = d.Field
		case 'S':
			c = d.Component
		case 'T':
			c = d.Subcomponent
		case 'R':
			c = d.Repetition
		case 'E':
			c = d.Escape
		case 'P':
			c = d.Truncation
		case 'H', 'N':
			if o.KeepFormatting {
				b.WriteString(whole)
			}
			return true
		default:
			return false
		}
		if c == 0 {
			return false
		}
		b.WriteByte(c)
		return true
	}
	switch seq[0] {
	case 'X', 'x':
		hex := seq[1:]
		if len(hex)%2 != 0 || !isHex(hex) {
			return false
		}
		var raw [64]byte
		buf := raw[:0]
		for k := 0; k < len(hex); k += 2 {
			buf = append(buf, unhex(hex[k])<<4|unhex(hex[k+1]))
		}
		if utf8.Valid(buf) {
			b.Write(buf)
		} else {
			// Bytes that are not UTF-8 are most likely Latin-1 (the common
			// fallback); map each to its code point rather than lose it.
			for _, c := range buf {
				b.WriteRune(rune(c))
			}
		}
		return true
	case 'C', 'M':
		hex := seq[1:]
		if (seq[0] == 'C' && len(hex) != 4) || (seq[0] == 'M' && len(hex) != 4 && len(hex) != 6) || !isHex(hex) {
			return false
		}
		if o.KeepFormatting {
			b.WriteString(whole)
		}
		return true
	case 'Z':
		if o.KeepFormatting {
			b.WriteString(whole)
		}
		return true
	case '.':
		cmd, arg := formatCmd(seq[1:])
		if cmd == "" {
			return false
		}
		if o.KeepFormatting {
			b.WriteString(whole)
			return true
		}
		switch cmd {
		case "br", "ce":
			b.WriteByte('\n')
		case "sp":
			for k, n := 0, countArg(arg); k < n; k++ {
				b.WriteByte('\n')
			}
		case "sk":
			for k, n := 0, countArg(arg); k < n; k++ {
				b.WriteByte(' ')
			}
		case "in", "ti", "fi", "nf":
		}
		return true
	}
	return false
}

// formatCmd splits ".sp 3"-style text (without the dot) into a known command and
// its argument; it returns "" for anything else.
func formatCmd(s string) (cmd, arg string) {
	if len(s) < 2 {
		return "", ""
	}
	cmd, arg = s[:2], strings.TrimSpace(s[2:])
	switch cmd {
	case "br", "fi", "nf", "ce":
		if arg != "" {
			return "", ""
		}
	case "sp", "sk", "in", "ti":
		if arg != "" {
			a := strings.TrimPrefix(strings.TrimPrefix(arg, "+"), "-")
			if _, err := strconv.Atoi(a); err != nil {
				return "", ""
			}
		}
	default:
		return "", ""
	}
	return cmd, arg
}

// countArg reads a .sp/.sk count: absent means 1; capped so hostile input cannot
// blow up the output.
func countArg(arg string) int {
	if arg == "" {
		return 1
	}
	n, err := strconv.Atoi(strings.TrimPrefix(arg, "+"))
	if err != nil || n < 0 {
		return 0
	}
	if n > 100 {
		n = 100
	}
	return n
}

func isHex(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if unhex(s[i]) == 0xFF {
			return false
		}
	}
	return true
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10
	}
	return 0xFF
}

// Escape encodes s for use as a field, component or subcomponent value in a
// message with delimiters d: each delimiter becomes its escape sequence, CR and LF
// become \X0D\ and \X0A\ (a raw line break would end the segment).
func Escape(s string, d Delimiters) string {
	needs := false
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == d.Field || c == '\r' || c == '\n' || (c != 0 && (c == d.Component || c == d.Repetition ||
			c == d.Escape || c == d.Subcomponent || c == d.Truncation)) {
			needs = true
			break
		}
	}
	if !needs || d.Escape == 0 {
		if d.Escape == 0 {
			return strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
		}
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	e := d.Escape
	for i := 0; i < len(s); i++ {
		c := s[i]
		var code string
		switch {
		case c == d.Field:
			code = "F"
		case c == d.Component && c != 0:
			code = "S"
		case c == d.Subcomponent && c != 0:
			code = "T"
		case c == d.Repetition && c != 0:
			code = "R"
		case c == d.Escape:
			code = "E"
		case c == d.Truncation && c != 0:
			code = "P"
		case c == '\r':
			code = "X0D"
		case c == '\n':
			code = "X0A"
		default:
			b.WriteByte(c)
			continue
		}
		b.WriteByte(e)
		b.WriteString(code)
		b.WriteByte(e)
	}
	return b.String()
}
