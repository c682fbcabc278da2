package forwarder

import (
	"bytes"
	"errors"
	"strings"

	"github.com/resultgate/resultgate/hl7"
)

// ErrBadAck means the downstream answered with something that is not a usable
// HL7 acknowledgement: no MSA segment, an unknown MSA-1, or an MSA-2 that
// names another message. The message is not taken as delivered and is tried
// again.
var ErrBadAck = errors.New("forwarder: unusable ACK from downstream")

// readAck returns MSA-1 and MSA-2 of an ACK. It parses the ACK as HL7 and,
// if that fails (downstream engines produce odd ACKs), scans for the MSA
// segment using the field separator that follows "MSA".
func readAck(ack []byte) (code hl7.AckCode, ackedID string, err error) {
	if m, perr := hl7.Parse(ack); perr == nil {
		if msa := m.First("MSA"); msa != nil {
			code, ackedID = hl7.AckCode(msa.Field(1).Value()), msa.Field(2).Value()
		}
	} else {
		code, ackedID = scanMSA(ack)
	}
	code = hl7.AckCode(strings.ToUpper(strings.TrimSpace(string(code))))
	switch code {
	case hl7.AA, hl7.AE, hl7.AR, hl7.CA, hl7.CE, hl7.CR:
		return code, strings.TrimSpace(ackedID), nil
	case "":
		return "", "", errors.Join(ErrBadAck, errors.New("no MSA-1"))
	default:
		return code, "", errors.Join(ErrBadAck, errors.New("MSA-1 is not an acknowledgement code"))
	}
}

// scanMSA finds the MSA segment at the start of a segment and returns its
// first two fields.
func scanMSA(ack []byte) (hl7.AckCode, string) {
	for seg := range bytes.FieldsFuncSeq(ack, func(r rune) bool { return r == '\r' || r == '\n' }) {
		if len(seg) < 4 || string(seg[:3]) != "MSA" {
			continue
		}
		f := bytes.Split(seg[4:], seg[3:4])
		id := ""
		if len(f) > 1 {
			id = string(f[1])
		}
		return hl7.AckCode(f[0]), id
	}
	return "", ""
}

// rejected reports a permanent refusal (AR, CR): sending the same bytes again
// cannot succeed.
func rejected(c hl7.AckCode) bool { return c == hl7.AR || c == hl7.CR }
