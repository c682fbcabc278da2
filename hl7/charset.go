package hl7

import (
	"encoding/binary"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/korean"
	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/encoding/traditionalchinese"
)

// Charset names from HL7 table 0211 (MSH-18) that this package decodes.
const (
	CharsetASCII  = "ASCII"
	CharsetUTF8   = "UNICODE UTF-8"
	CharsetLatin1 = "8859/1"
)

// DefaultFallbackCharset is used when ParseOptions.FallbackCharset is empty and
// the bytes do not fit the declared (or assumed UTF-8) character set: senders that
// leave MSH-18 empty and send non-UTF-8 bytes almost always send ISO 8859-1 or
// its Windows-1252 superset.
const DefaultFallbackCharset = CharsetLatin1

// charsetInfo is a decodable character set: enc is nil for ASCII and UTF-8, whose
// bytes are used as they are.
type charsetInfo struct {
	name string
	enc  encoding.Encoding
}

// charsets maps upper-cased MSH-18 spellings, including common non-standard ones
// (IANA names that senders put there instead), to decoders.
var charsets = map[string]charsetInfo{
	"ASCII":         {CharsetASCII, nil},
	"US-ASCII":      {CharsetASCII, nil},
	"UNICODE UTF-8": {CharsetUTF8, nil},
	"UNICODE":       {CharsetUTF8, nil}, // deprecated "UNICODE" (ISO 10646); in practice UTF-8 on the wire
	"UTF-8":         {CharsetUTF8, nil},
	"UTF8":          {CharsetUTF8, nil},
	"8859/1":        {"8859/1", charmap.ISO8859_1},
	"8859/2":        {"8859/2", charmap.ISO8859_2},
	"8859/3":        {"8859/3", charmap.ISO8859_3},
	"8859/4":        {"8859/4", charmap.ISO8859_4},
	"8859/5":        {"8859/5", charmap.ISO8859_5},
	"8859/6":        {"8859/6", charmap.ISO8859_6},
	"8859/7":        {"8859/7", charmap.ISO8859_7},
	"8859/8":        {"8859/8", charmap.ISO8859_8},
	"8859/9":        {"8859/9", charmap.ISO8859_9},
	"8859/10":       {"8859/10", charmap.ISO8859_10},
	"8859/13":       {"8859/13", charmap.ISO8859_13},
	"8859/14":       {"8859/14", charmap.ISO8859_14},
	"8859/15":       {"8859/15", charmap.ISO8859_15},
	"8859/16":       {"8859/16", charmap.ISO8859_16},
	"ISO-8859-1":    {"8859/1", charmap.ISO8859_1},
	"ISO8859-1":     {"8859/1", charmap.ISO8859_1},
	"ISO_8859-1":    {"8859/1", charmap.ISO8859_1},
	"LATIN1":        {"8859/1", charmap.ISO8859_1},
	"ISO-8859-15":   {"8859/15", charmap.ISO8859_15},
	"WINDOWS-1252":  {"WINDOWS-1252", charmap.Windows1252},
	"CP1252":        {"WINDOWS-1252", charmap.Windows1252},
	"GB 18030-2000": {"GB 18030-2000", simplifiedchinese.GB18030},
	"GB18030":       {"GB 18030-2000", simplifiedchinese.GB18030},
	"KS X 1001":     {"KS X 1001", korean.EUCKR},
	"BIG-5":         {"BIG-5", traditionalchinese.Big5},
	"BIG5":          {"BIG-5", traditionalchinese.Big5},
}

// lookupCharset finds a character set by its MSH-18 (or IANA) name.
func lookupCharset(name string) (charsetInfo, bool) {
	switch name { // the usual spellings, without upper-casing and hashing
	case CharsetUTF8:
		return charsetInfo{CharsetUTF8, nil}, true
	case CharsetASCII:
		return charsetInfo{CharsetASCII, nil}, true
	}
	n := strings.ToUpper(strings.TrimSpace(name))
	if cs, ok := charsets[n]; ok {
		return cs, true
	}
	// "8859/1" is sometimes written "ISO 8859/1" or "ISO8859/1".
	n = strings.TrimPrefix(strings.TrimPrefix(n, "ISO"), " ")
	cs, ok := charsets[n]
	return cs, ok
}

// IsSupportedCharset reports whether name (an MSH-18 value) can be decoded.
func IsSupportedCharset(name string) bool {
	if strings.TrimSpace(name) == "" {
		return true
	}
	_, ok := lookupCharset(name)
	return ok
}

// decodeBytes decodes b from cs into a UTF-8 string.
func decodeBytes(cs charsetInfo, b []byte) (string, error) {
	out, err := cs.enc.NewDecoder().Bytes(b)
	if err != nil {
		return "", err
	}
	return string(out), nil
}

// isASCII reports whether b holds only 7-bit bytes, eight bytes at a time.
func isASCII(b []byte) bool {
	for len(b) >= 8 {
		if binary.LittleEndian.Uint64(b)&0x8080808080808080 != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

// validUTF8 reports whether b is valid UTF-8.
func validUTF8(b []byte) bool { return utf8.Valid(b) }
