package forwarder

import (
	"errors"

	"github.com/resultgate/resultgate/hl7"
)

// ErrBadAck means the downstream answered with something that is not a usable
// HL7 acknowledgement: no MSA segment, an unknown MSA-1, or an MSA-2 that
// names another message. The message is not taken as delivered and is tried
// again.
var ErrBadAck = errors.New("forwarder: unusable ACK from downstream")

// readAck returns MSA-1 and MSA-2 of an ACK, read leniently by hl7.ReadACK
// (downstream engines produce odd ACKs).
func readAck(ack []byte) (code hl7.AckCode, ackedID string, err error) {
	a, err := hl7.ReadACK(ack)
	if err != nil {
		return a.Code, "", errors.Join(ErrBadAck, err)
	}
	return a.Code, a.ControlID, nil
}

// rejected reports a permanent refusal (AR, CR): sending the same bytes again
// cannot succeed.
func rejected(c hl7.AckCode) bool { return c == hl7.AR || c == hl7.CR }
