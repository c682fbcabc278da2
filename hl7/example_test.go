package hl7_test

import (
	"fmt"
	"strings"
	"time"

	"github.com/resultgate/resultgate/hl7"
)

func Example() {
	data := []byte("MSH|^~\\&|LAB|LABFAC|PORTAL|HOSP|20240305143012-0500||ORU^R01^ORU_R01|C1|P|2.5.1|||AL|NE\r" +
		"PID|1||MRN1^^^HOSP&1.2.3&ISO^MR||TESTPATIENT^ALPHA\r" +
		"OBR|1|PL1|FI1|88305^Surgical pathology^CPT\r" +
		"OBX|1|FT|22637-3^Final diagnosis^LN||Line one\\.br\\Line two||||||F\r")
	m, err := hl7.Parse(data)
	if err != nil {
		fmt.Println(err)
		return
	}
	mrn, _ := m.Get("PID-3.1")
	authority, _ := m.Get("PID-3.4.2")
	fmt.Println(m.ControlID(), mrn, authority)

	oru, _ := m.ORU()
	for _, order := range oru.Orders() {
		fmt.Println(order.Request().UniversalServiceID.Text)
		for _, obs := range order.Observations {
			fmt.Printf("%q\n", obs.Result().Text())
		}
	}

	ack := hl7.BuildACKWith(m, hl7.ACKOptions{
		Now:       func() time.Time { return time.Date(2024, 3, 5, 19, 31, 0, 0, time.UTC) },
		ControlID: "ACK1",
	}, hl7.AckCodeFor(m.EnhancedAckMode(), hl7.Accepted))
	fmt.Println(strings.ReplaceAll(string(ack), "\r", "\n"))
	// Output:
	// C1 MRN1 1.2.3
	// Surgical pathology
	// "Line one\nLine two"
	// MSH|^~\&|PORTAL|HOSP|LAB|LABFAC|20240305193100+0000||ACK^R01^ACK|ACK1|P|2.5.1
	// MSA|CA|C1
}

func ExampleSplitMessages() {
	batch := []byte("BHS|^~\\&|LAB\rMSH|^~\\&|LAB||||||ORU^R01|A|P|2.5\rMSH|^~\\&|LAB||||||ORU^R01|B|P|2.5\rBTS|2\r")
	msgs, _ := hl7.SplitMessages(batch)
	for _, b := range msgs {
		m, _ := hl7.Parse(b)
		fmt.Println(m.ControlID())
	}
	// Output:
	// A
	// B
}

func ExampleBuildACKFromBytes() {
	// Only the first bytes of an oversize frame are at hand.
	prefix := []byte("MSH|^~\\&|LAB|LABFAC|PORTAL|HOSP|20240305||ORU^R01|BIG7|P|2.5.1\rPID|1||")
	ack := hl7.BuildACKFromBytesWith(prefix, hl7.ACKOptions{
		Now:       func() time.Time { return time.Date(2024, 3, 5, 0, 0, 0, 0, time.UTC) },
		ControlID: "ACK2",
	}, hl7.AR, hl7.ErrorDetail{Code: hl7.CodeInternalError, Message: "message too large"})
	fmt.Println(strings.ReplaceAll(string(ack), "\r", "\n"))
	// Output:
	// MSH|^~\&|PORTAL|HOSP|LAB|LABFAC|20240305000000+0000||ACK^R01^ACK|ACK2|P|2.5.1
	// MSA|AR|BIG7
	// ERR|||207^Application internal error^HL70357|E||||message too large
}
