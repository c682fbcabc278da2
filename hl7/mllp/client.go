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

	sendMu   sync.Mutex  // serialises Send; guards the fields below
	rd       *Reader     // reads ACKs from conn
	alive    *aliveCheck // for conn
	failures int         // consecutive failed connections or sends
	retryAt  time.Time   // no connection attempt before this (back-off)

	mu      sync.Mutex // guards conn and closed, so that Close need not wait for Send
	conn    net.Conn
	closed  bool
	closeCh chan struct{}
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
	return &Client{
		cfg:     cfg,
		log:     cfg.Logger.With().Str("addr", cfg.Addr).Logger(),
		closeCh: make(chan struct{}),
	}
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
// connection; on any other failure the connection is dropped too (a late ACK must
// not be taken for the next message's). Send never retransmits: whether to resend
// after a failure (the receiver may have stored the message) is the caller's
// decision. Close interrupts a Send in progress, which then returns
// ErrClientClosed.
func (c *Client) Send(ctx context.Context, msg []byte) (ack []byte, err error) {
	if bytes.IndexByte(msg, StartBlock) >= 0 || bytes.IndexByte(msg, EndBlock) >= 0 {
		return nil, ErrFramingByte
	}
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	conn, err := c.current()
	if err != nil {
		return nil, err
	}
	switch {
	case conn == nil:
	case !c.alive.ok():
		// The receiver closed the connection while it was idle (idle timeout,
		// restart): reconnect now rather than lose this message to it.
		c.log.Debug().Msg("mllp connection closed by peer while idle; reconnecting")
		c.drop(false)
		conn = nil
	case c.rd.bufferedFrame():
		// The receiver sent more than one frame for the last message (a
		// duplicate ACK, say). Reading on would pair this message with that
		// stray frame, so start afresh.
		c.log.Warn().Msg("mllp unsolicited frame from receiver; reconnecting")
		c.drop(false)
		conn = nil
	}
	if conn == nil {
		if conn, err = c.reconnect(ctx); err != nil {
			return nil, err
		}
	}

	dl := time.Now().Add(c.cfg.AckTimeout)
	ctxBound := false
	if d, ok := ctx.Deadline(); ok && d.Before(dl) {
		dl, ctxBound = d, true
	}
	if err := conn.SetDeadline(dl); err != nil {
		c.drop(true)
		return nil, c.sendErr(fmt.Errorf("mllp: sending to %s: %w", c.cfg.Addr, err))
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
		ctxErr := ctx.Err()
		// The caller giving up is not the receiver failing.
		c.drop(ctxErr == nil && !(ctxBound && isTimeout(err)))
		if ctxErr != nil {
			return nil, c.sendErr(fmt.Errorf("mllp: sending to %s: %w", c.cfg.Addr, ctxErr))
		}
		if isTimeout(err) {
			if ctxBound {
				return nil, c.sendErr(fmt.Errorf("mllp: sending to %s: %w", c.cfg.Addr, context.DeadlineExceeded))
			}
			return nil, c.sendErr(fmt.Errorf("mllp: no ACK from %s within %s: %w", c.cfg.Addr, c.cfg.AckTimeout, ErrAckTimeout))
		}
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, c.sendErr(fmt.Errorf("mllp: sending to %s: connection lost before the ACK: %w", c.cfg.Addr, err))
	}
	c.failures = 0
	return bytes.Clone(frame), nil
}

// sendErr returns ErrClientClosed instead of err when Close caused the failure.
func (c *Client) sendErr(err error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClientClosed
	}
	return err
}

// current returns the connection (nil if none), or ErrClientClosed.
func (c *Client) current() (net.Conn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClientClosed
	}
	return c.conn, nil
}

// Close closes the connection, interrupting a Send in progress; later Sends fail
// with ErrClientClosed. Close is idempotent.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	close(c.closeCh)
	if c.conn == nil {
		return nil
	}
	err := c.conn.Close()
	c.conn = nil
	return err
}

// drop closes the connection; failed says whether it counts as a failure for the
// back-off. Called with sendMu held.
func (c *Client) drop(failed bool) {
	c.mu.Lock()
	if c.conn != nil {
		_ = c.conn.Close()
		c.conn = nil
	}
	c.mu.Unlock()
	c.alive = nil
	if failed {
		c.failed()
	}
}

// failed records a failure and schedules the next connection attempt.
func (c *Client) failed() {
	c.failures++
	c.retryAt = time.Now().Add(c.backoff(c.failures))
}

// reconnect connects, waiting out the back-off before each attempt, until it
// succeeds or ctx ends. The back-off runs from the last failure, so a Send that
// comes long after it connects at once. Called with sendMu held.
func (c *Client) reconnect(ctx context.Context) (net.Conn, error) {
	for {
		if wait := time.Until(c.retryAt); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, fmt.Errorf("mllp: reconnecting to %s: %w", c.cfg.Addr, ctx.Err())
			case <-c.closeCh:
				t.Stop()
				return nil, ErrClientClosed
			case <-t.C:
			}
		}
		err := c.dial(ctx)
		if err == nil {
			return c.current()
		}
		if errors.Is(err, ErrClientClosed) {
			return nil, err
		}
		c.failed()
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, fmt.Errorf("mllp: reconnecting to %s: %w (last attempt: %w)", c.cfg.Addr, ctxErr, err)
		}
		c.log.Warn().Err(err).Int("attempt", c.failures).Dur("retry_in", time.Until(c.retryAt)).Msg("mllp reconnect failed")
	}
}

// backoff returns the delay after n consecutive failures: Min·2^(n-1) capped at
// Max, drawn uniformly from its upper half.
func (c *Client) backoff(n int) time.Duration {
	d := c.cfg.Backoff.Min
	for i := 1; i < n && d < c.cfg.Backoff.Max; i++ {
		d *= 2
	}
	d = min(d, c.cfg.Backoff.Max)
	half := d / 2
	return half + rand.N(d-half+1)
}

// dial makes one connection attempt within DialTimeout. Called with sendMu held
// (or before the Client is shared).
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
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		conn.Close()
		return ErrClientClosed
	}
	c.conn = conn
	c.mu.Unlock()
	c.alive = newAliveCheck(conn)
	if c.rd == nil {
		c.rd = NewReader(conn, c.cfg.MaxFrameSize)
	} else {
		c.rd.Reset(conn)
	}
	c.log.Debug().Str("local", conn.LocalAddr().String()).Msg("mllp connected")
	return nil
}
