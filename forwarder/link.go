package forwarder

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"sync"

	"github.com/rs/zerolog"

	"github.com/resultgate/resultgate/hl7/mllp"
)

// errLinkClosed is returned by link.send after close.
var errLinkClosed = errors.New("forwarder: connection closed by stop")

// link is one MLLP connection to the downstream, shared by some partitions.
// It sends one message at a time (MLLP allows one outstanding message per
// connection). It connects with a single attempt (mllp.Dial) and drops the
// connection after any failure, so that a downstream that is down fails the
// attempt at once and the retry is paced by the forwarder's own back-off,
// counted per message and kept across restarts, rather than by the client's
// reconnect loop.
type link struct {
	cfg mllp.ClientConfig
	sem chan struct{} // the send token: one message at a time

	mu     sync.Mutex // guards c and closed; never held during I/O
	c      *mllp.Client
	closed bool
}

func newLink(addr string, tc *tls.Config, cfg Config, log zerolog.Logger) *link {
	return &link{
		cfg: mllp.ClientConfig{
			Addr: addr, TLS: tc, DialTimeout: cfg.DialTimeout, AckTimeout: cfg.AckTimeout, Logger: log,
		},
		sem: make(chan struct{}, 1),
	}
}

// send delivers msg and returns the ACK frame. Waiting for the connection
// (another partition's message in flight) is bounded by ctx only; connecting
// is bounded by DialTimeout and the ACK by AckTimeout.
func (l *link) send(ctx context.Context, msg []byte) ([]byte, error) {
	select {
	case l.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for the downstream connection: %w", ctx.Err())
	}
	defer func() { <-l.sem }()
	l.mu.Lock()
	c, closed := l.c, l.closed
	l.mu.Unlock()
	if closed {
		return nil, errLinkClosed
	}
	if c == nil {
		var err error
		if c, err = mllp.Dial(ctx, l.cfg); err != nil {
			return nil, err
		}
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			_ = c.Close()
			return nil, errLinkClosed
		}
		l.c = c
		l.mu.Unlock()
	}
	ack, err := c.Send(ctx, msg)
	if err != nil {
		// Start afresh next time: a late ACK must never be paired with the
		// next message, and a new connection is cheap next to a retry delay.
		l.mu.Lock()
		if l.c == c {
			l.c = nil
		}
		closed = l.closed
		l.mu.Unlock()
		_ = c.Close()
		if closed || errors.Is(err, mllp.ErrClientClosed) {
			return nil, errLinkClosed
		}
		return nil, err
	}
	return ack, nil
}

// close closes the connection, interrupting a send in progress; later sends
// fail with errLinkClosed. It is idempotent.
func (l *link) close() error {
	l.mu.Lock()
	c := l.c
	l.c, l.closed = nil, true
	l.mu.Unlock()
	if c == nil {
		return nil
	}
	return c.Close()
}
