package mllp_test

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/resultgate/resultgate/hl7/mllp"
)

// ackHandler answers every message with a fixed ACK. A real handler parses MSH,
// stores the message and builds the ACK from it (package hl7).
type ackHandler struct{}

func (ackHandler) HandleMessage(ctx context.Context, peer mllp.Peer, frame []byte) []byte {
	return []byte("MSH|^~\\&|RG|HOSP|LIS|HOSP|20260101000000||ACK|1|P|2.5.1\rMSA|AA|CTRL1\r")
}

func (ackHandler) HandleTooLarge(ctx context.Context, peer mllp.Peer, prefix []byte, size int64) []byte {
	return []byte("MSH|^~\\&|RG|HOSP|LIS|HOSP|20260101000000||ACK|1|P|2.5.1\rMSA|AR|CTRL1\rERR|||207^Application internal error^HL70357|E\r")
}

func Example() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	srv := mllp.NewServer(mllp.ServerConfig{MaxFrameSize: 1 << 20}, ackHandler{})
	go srv.Serve(ln)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := mllp.Dial(ctx, mllp.ClientConfig{Addr: ln.Addr().String(), AckTimeout: 5 * time.Second})
	if err != nil {
		panic(err)
	}
	ack, err := c.Send(ctx, []byte("MSH|^~\\&|LIS|HOSP|RG|HOSP|20260101000000||ORU^R01|CTRL1|P|2.5.1\rPID|1\r"))
	if err != nil {
		panic(err)
	}
	fmt.Printf("%q\n", ack[len(ack)-14:])
	c.Close()
	if err := srv.Shutdown(ctx); err != nil {
		panic(err)
	}
	// Output: "\rMSA|AA|CTRL1\r"
}
