package mllp

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// Client defaults applied to zero fields of ClientConfig.
const (
	// DefaultDialTimeout bounds connecting, TLS handshake included.
	DefaultDialTimeout = 10 * time.Second
	// DefaultAckTimeout bounds waiting for an ACK. Receivers that store before
	// acknowledging (as resultgate does) answer in milliseconds; 30 s covers a
	// slow interface engine without letting a stuck one block the sender forever.
	DefaultAckTimeout = 30 * time.Second
	// DefaultBackoffMin and DefaultBackoffMax bound the reconnect back-off.
	DefaultBackoffMin = 100 * time.Millisecond
	DefaultBackoffMax = 30 * time.Second
	// DefaultClientMaxFrameSize bounds an ACK: ACKs are small (MSH, MSA, a few
	// ERR segments), so 1 MiB is generous.
	DefaultClientMaxFrameSize = 1 << 20
	// clientKeepAlive is the client's TCP keep-alive; see DefaultKeepAlive.
	clientKeepAlive = 30 * time.Second
)

var (
	// ErrAckTimeout is returned by Client.Send when no ACK arrived within the
	// AckTimeout. The connection is dropped (a late ACK would otherwise be taken
	// for the next message's) and the next Send reconnects.
	ErrAckTimeout = errors.New("mllp: timed out waiting for ACK")

	// ErrClientClosed is returned by Client.Send after Close.
	ErrClientClosed = errors.New("mllp: client closed")
)

// Backoff bounds the delay before reconnecting: the delay starts at Min and doubles
// with each failed attempt up to Max, with jitter (each delay is drawn uniformly
// from its upper half) so that many senders do not reconnect in lockstep.
type Backoff struct {
	Min, Max time.Duration
}

// ClientConfig configures a Client. Zero fields take the Default* values.
type ClientConfig struct {
	// Addr is the receiver's host:port.
	Addr string
	// TLS, when set, makes the client speak TLS (at least TLS 1.2). Set
	// Certificates for mutual TLS and RootCAs for a private CA; ServerName defaults
	// to Addr's host.
	TLS *tls.Config
	// DialTimeout bounds each connection attempt, TLS handshake included.
	DialTimeout time.Duration
	// AckTimeout bounds writing a message and reading its ACK.
	AckTimeout time.Duration
	// MaxFrameSize bounds an ACK frame.
	MaxFrameSize int
	// Backoff bounds the delay between reconnect attempts.
	Backoff Backoff
	// Logger receives connection-level logs (never message content). The zero
	// Logger discards them.
	Logger zerolog.Logger
}

// Client sends messages over one MLLP connection and waits for each ACK. It is
// safe for concurrent use, but sends one message at a time (MLLP allows one
// outstanding message per connection); use several Clients for parallelism.
type Client struct {
	cfg ClientConfig
	log zerolog.Logger

	mu       sync.Mutex
	conn     net.Conn
	alive    *aliveCheck // for conn
	rd       *Reader
	failures int // consecutive failed connections or sends; drives the back-off
	closed   bool
}

// NewClient returns a Client that connects on its first Send. It does no I/O.
func NewClient(cfg ClientConfig) *Client {
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.AckTimeout <= 0 {
		cfg.AckTimeout = DefaultAckTimeout
	}
	if cfg.MaxFrameSize <= 0 {
		cfg.MaxFrameSize = DefaultClientMaxFrameSize
	}
	if cfg.Backoff.Min <= 0 {
		cfg.Backoff.Min = DefaultBackoffMin
	}
	if cfg.Backoff.Max <= 0 {
		cfg.Backoff.Max = DefaultBackoffMax
	}
	cfg.Backoff.Max = max(cfg.Backoff.Max, cfg.Backoff.Min)
	if cfg.TLS != nil {
		cfg.TLS = tlsAtLeast12(cfg.TLS)
	}
	return &Client{cfg: cfg, log: cfg.Logger.With().Str("addr", cfg.Addr).Logger()}
}

// Dial connects to cfg.Addr once (no retry, so a wrong address or a refused
// connection is reported at once) and returns the Client. Later Sends reconnect
// with back-off when the connection is lost.
func Dial(ctx context.Context, cfg ClientConfig) (*Client, error) {
	c := NewClient(cfg)
	if err := c.dial(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// Send writes msg as one frame and returns the ACK frame's bytes (owned by the
// caller) once it arrives, within AckTimeout and ctx.
//
// If the Client has no connection, Send first connects, retrying with exponential
// back-off and jitter until it succeeds or ctx ends; give ctx a deadline to bound
// that. On an ACK timeout Send returns an error matching ErrAckTimeout and drops the
// connection; on any other failure the connection is dropped too. Send never
// retransmits: whether to resend after a failure (the receiver may have stored the
// message) is the caller's decision.
func (c *Client) Send(ctx context.Context, msg []byte) (ack []byte, err error) {
	if bytes.IndexByte(msg, StartBlock) >= 0 || bytes.IndexByte(msg, EndBlock) >= 0 {
		return nil, ErrFramingByte
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClientClosed
	}
	if c.conn != nil && !c.alive.ok() {
		// The receiver closed the connection while it was idle (idle timeout,
		// restart): reconnect now instead of losing this message to it.
		c.log.Debug().Msg("mllp connection closed by peer while idle; reconnecting")
		c.dropLocked(false)
	}
	if c.conn == nil {
		if err := c.reconnectLocked(ctx); err != nil {
			return nil, err
		}
	}
	conn := c.conn

	dl := time.Now().Add(c.cfg.AckTimeout)
	ctxBound := false
	if d, ok := ctx.Deadline(); ok && d.Before(dl) {
		dl, ctxBound = d, true
	}
	if err := conn.SetDeadline(dl); err != nil {
		c.dropLocked(true)
		return nil, fmt.Errorf("mllp: sending to %s: %w", c.cfg.Addr, err)
	}
	if ctx.Done() != nil {
		// Cancelling ctx interrupts a blocked write or read.
		stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
		defer stop()
	}
	err = WriteFrame(conn, msg)
	var frame []byte
	if err == nil {
		frame, err = c.rd.ReadFrame()
	}
	if err != nil {
		var tooLarge *FrameTooLargeError
		if errors.As(err, &tooLarge) {
			// The reader skipped the whole frame: the connection is still in step.
			return nil, fmt.Errorf("mllp: ACK from %s: %w", c.cfg.Addr, err)
		}
		c.dropLocked(true)
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, fmt.Errorf("mllp: sending to %s: %w", c.cfg.Addr, ctxErr)
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			if ctxBound {
				return nil, fmt.Errorf("mllp: sending to %s: %w", c.cfg.Addr, context.DeadlineExceeded)
			}
			return nil, fmt.Errorf("mllp: no ACK from %s within %s: %w", c.cfg.Addr, c.cfg.AckTimeout, ErrAckTimeout)
		}
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("mllp: sending to %s: connection lost before the ACK: %w", c.cfg.Addr, err)
	}
	c.failures = 0
	return bytes.Clone(frame), nil
}

// Close closes the connection; later Sends fail with ErrClientClosed.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	if c.conn == nil {
		return nil
	}
	err := c.conn.Close()
	c.conn = nil
	return err
}

// dropLocked closes the connection; failed says whether it counts as a failure
// for the back-off.
func (c *Client) dropLocked(failed bool) {
	if c.conn != nil {
		_ = c.conn.Close()
		c.conn = nil
	}
	if failed {
		c.failures++
	}
}

// reconnectLocked connects, waiting the back-off before each attempt that
// follows a failure, until it succeeds or ctx ends.
func (c *Client) reconnectLocked(ctx context.Context) error {
	for {
		if c.failures > 0 {
			d := c.backoff(c.failures)
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				return fmt.Errorf("mllp: reconnecting to %s: %w", c.cfg.Addr, ctx.Err())
			case <-t.C:
			}
		}
		err := c.dial(ctx)
		if err == nil {
			return nil
		}
		c.failures++
		if ctxErr := ctx.Err(); ctxErr != nil {
			return fmt.Errorf("mllp: reconnecting to %s: %w (last attempt: %w)", c.cfg.Addr, ctxErr, err)
		}
		c.log.Warn().Err(err).Int("attempt", c.failures).Msg("mllp reconnect failed")
	}
}

// backoff returns the delay before the attempt following n consecutive failures:
// Min·2^(n-1) capped at Max, drawn uniformly from its upper half.
func (c *Client) backoff(n int) time.Duration {
	d := c.cfg.Backoff.Min
	for i := 1; i < n && d < c.cfg.Backoff.Max; i++ {
		d *= 2
	}
	d = min(d, c.cfg.Backoff.Max)
	half := d / 2
	return half + rand.N(d-half+1)
}

// dial makes one connection attempt within DialTimeout.
func (c *Client) dial(ctx context.Context) error {
	if c.cfg.Addr == "" {
		return errors.New("mllp: client address is empty")
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout)
	defer cancel()
	nd := &net.Dialer{KeepAliveConfig: net.KeepAliveConfig{
		Enable: true, Idle: clientKeepAlive, Interval: clientKeepAlive / 3, Count: 3,
	}}
	var conn net.Conn
	var err error
	if c.cfg.TLS != nil {
		conn, err = (&tls.Dialer{NetDialer: nd, Config: c.cfg.TLS}).DialContext(ctx, "tcp", c.cfg.Addr)
	} else {
		conn, err = nd.DialContext(ctx, "tcp", c.cfg.Addr)
	}
	if err != nil {
		return fmt.Errorf("mllp: connecting to %s: %w", c.cfg.Addr, err)
	}
	c.conn = conn
	c.alive = newAliveCheck(conn)
	if c.rd == nil {
		c.rd = NewReader(conn, c.cfg.MaxFrameSize)
	} else {
		c.rd.Reset(conn)
	}
	c.log.Debug().Str("local", conn.LocalAddr().String()).Msg("mllp connected")
	return nil
}
