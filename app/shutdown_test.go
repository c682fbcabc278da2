package app

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// An HTTP handler stuck reading a request body (its client stalled) does not
// hold the stop for the whole bound: requests get stopGrace to finish, then
// their contexts are cancelled and their connections closed. (Before, Stop
// waited for the handler until its own deadline.)
func TestStopCutsStuckHTTPRequestShort(t *testing.T) {
	e := newAPIEnv(t)
	addr := e.app.HTTPAddr().String()
	var d net.Dialer
	c, err := d.DialContext(context.Background(), "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Headers of an authenticated POST whose body never comes; the 100
	// Continue says the handler has started reading it.
	if _, err := fmt.Fprintf(c, "POST /fhir/Consent HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: application/fhir+json\r\nContent-Length: 4096\r\nExpect: 100-continue\r\n\r\n", addr, e.tokens["clinician"]); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100") {
		t.Fatalf("waiting for 100 Continue: %q %v", line, err)
	}
	if _, err := c.Write([]byte(`{"resourceType":"Consent",`)); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), DefaultStopTimeout)
	defer cancel()
	start := time.Now()
	err = e.app.Stop(ctx)
	took := time.Since(start)
	if err != nil {
		t.Errorf("Stop: %v", err)
	}
	// stopGrace, then a second for the cancelled handler to answer, then
	// the close; the rest is margin for a loaded machine.
	if bound := stopGrace + time.Second + 3*time.Second; took > bound {
		t.Errorf("Stop took %s with a stuck HTTP request, want within %s", took, bound)
	}
	// The stalled client sees its connection closed, not left open.
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = io.Copy(io.Discard, br)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Errorf("the stalled connection is still open after Stop")
	}
	t.Logf("Stop with a stuck HTTP request: %s", took.Round(time.Millisecond))
}

// withReserve keeps the reserve for the last steps of a stop, and at most a
// fifth of a short bound.
func TestWithReserve(t *testing.T) {
	for _, c := range []struct {
		name          string
		bound, wantIn time.Duration
	}{
		{"the stop bound", DefaultStopTimeout, DefaultStopTimeout - stopReserve},
		{"a short bound", 5 * time.Second, 4 * time.Second},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), c.bound)
			defer cancel()
			phase, pcancel := withReserve(ctx, stopReserve)
			defer pcancel()
			dl, _ := phase.Deadline()
			if got := time.Until(dl); got > c.wantIn || got < c.wantIn-time.Second {
				t.Errorf("phase ends in %s, want about %s", got, c.wantIn)
			}
		})
	}
	phase, pcancel := withReserve(context.Background(), stopReserve)
	defer pcancel()
	if _, ok := phase.Deadline(); ok {
		t.Errorf("a phase of an unbounded stop has a deadline")
	}
}
