package feed

import (
	"bytes"

	"github.com/resultgate/resultgate/hl7"
)

// retractionSuffix is appended to MSH-10 of a synthesised retraction, so a
// downstream engine that deduplicates on the control ID does not mistake it
// for the correction it was made from.
const retractionSuffix = "-RETRACT"

// RetractionOf synthesises the HL7 message that takes back a released result
// while its correction is held (DispositionRetractAndHold): the correction
// m (raw bytes raw, read in place) with every OBX's value (OBX-5) emptied and
// its status (OBX-11) set to D, "deleted", an NTE after each OBR carrying the
// plain-language note, and MSH-10 suffixed. It names the same order and the
// same observations as the version the patient saw, so the HL7 feed and the
// forwarder take it down and the FHIR mapping updates the same resources to
// entered-in-error, and it carries none of the corrected content the hold
// keeps back. Segments are copied byte for byte otherwise.
func RetractionOf(m *hl7.Message, raw []byte, note string) []byte {
	d := m.Delimiters()
	sep := []byte{d.Field}
	out := make([]byte, 0, len(raw)+len(note)+64)
	rest := raw
	for {
		seg, r, ok := hl7.NextSegment(rest)
		if !ok {
			break
		}
		rest = r
		switch {
		case bytes.HasPrefix(seg, []byte("MSH")) && len(seg) > 3:
			out = appendWithField(out, seg, sep, 10, func(v []byte) []byte {
				return append(append([]byte(nil), v...), retractionSuffix...)
			}, 1)
		case bytes.HasPrefix(seg, []byte("OBX")) && len(seg) > 3 && seg[3] == d.Field:
			emptied := appendWithField(nil, seg, sep, 5, func([]byte) []byte { return nil }, 0)
			out = appendWithField(out, emptied, sep, 11, func([]byte) []byte { return []byte("D") }, 0)
		default:
			out = append(out, seg...)
		}
		out = append(out, '\r')
		if bytes.HasPrefix(seg, []byte("OBR")) && len(seg) > 3 && seg[3] == d.Field && note != "" {
			// NTE-2 O (other system: resultgate, table 0105), NTE-4 PI
			// (patient instructions, table 0364): the form the forwarder's
			// release instructions use, so it does not add the note twice.
			out = append(out, "NTE"...)
			out = append(out, d.Field, '1', d.Field, 'O', d.Field)
			out = append(out, hl7.Escape(note, d)...)
			out = append(out, d.Field, 'P', 'I', d.Component)
			out = append(out, hl7.Escape("Patient Instructions", d)...)
			out = append(out, d.Component)
			out = append(out, "HL70364"...)
			out = append(out, '\r')
		}
	}
	return out
}

// appendWithField appends seg to dst with field n replaced by set(old value),
// adding empty fields when seg has fewer. Fields are numbered as in the
// standard; offset is 1 for MSH, whose MSH-1 is the separator itself (so its
// n-th field is the (n-1)-th separated part), 0 for other segments.
func appendWithField(dst, seg, sep []byte, n int, set func([]byte) []byte, offset int) []byte {
	parts := bytes.Split(seg, sep)
	idx := n - offset
	for len(parts) <= idx {
		parts = append(parts, nil)
	}
	parts[idx] = set(parts[idx])
	return append(dst, bytes.Join(parts, sep)...)
}
