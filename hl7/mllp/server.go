package mllp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// Defaults applied by NewServer to zero fields of ServerConfig.
const (
	// DefaultMaxConns bounds concurrent connections. Interface engines open a
	// handful of connections each; 512 leaves room for many senders while bounding
	// goroutines, buffers and file descriptors.
	DefaultMaxConns = 512

	// DefaultMaxConnsPerPeer bounds the connections of one source address, so
	// that one host (a misconfigured engine, or anything else that can reach
	// the port) cannot take every slot. An interface engine opens one connection
	// per outbound channel, rarely more than a few dozen towards one system.
	DefaultMaxConnsPerPeer = 32

	// rejectLogInterval is the least time between two log lines of one
	// admission reason (see ServerConfig.MaxConns): a port scan or a sender
	// reconnecting in a tight loop must not flood the log, while the counters
	// stay exact and each line says how many were held back.
	rejectLogInterval = 10 * time.Second

	// DefaultReadTimeout bounds the time from a frame's first bytes to its end
	// block. It defends against slow-loris peers; 60 s carries a 16 MiB frame at
	// about 2.2 Mbit/s, slower than any hospital LAN or VPN link.
	DefaultReadTimeout = 60 * time.Second

	// DefaultIdleTimeout bounds the silence between frames. Interface engines keep
	// connections open and reconnect on their own when one is closed, so closing a
	// connection after 15 minutes without traffic costs a reconnect and frees the
	// slot held by a sender that went away without closing.
	DefaultIdleTimeout = 15 * time.Minute

	// DefaultWriteTimeout bounds writing an ACK, so a peer that stops reading
	// cannot hold a connection goroutine forever.
	DefaultWriteTimeout = 30 * time.Second

	// DefaultKeepAlive is the TCP keep-alive idle time (and, divided by three, the
	// probe interval). Hospital firewalls and VPN concentrators drop flows idle for
	// a few minutes (often 5 to 60) without telling either end, leaving an interface
	// engine writing into a connection that no longer exists. Probes after 30 s of
	// silence keep such flows in the firewall's state table, and three unanswered
	// probes 10 s apart detect a dead peer within about a minute.
	DefaultKeepAlive = 30 * time.Second

	// DefaultAddr is the listen address used by ListenAndServe for "": port 2575
	// is registered with IANA for HL7 over MLLP.
	DefaultAddr = ":2575"
)

var (
	// ErrServerClosed is returned by Serve and ListenAndServe after Shutdown or
	// Close.
	ErrServerClosed = errors.New("mllp: server closed")

	// errConnClosing aborts a connection's read when Shutdown closed it.
	errConnClosing = errors.New("mllp: connection closed by shutdown")
)

// Handler processes the frames of a Server. Calls for one connection are made in
// order, one at a time, from that connection's goroutine; calls for different
// connections run concurrently.
type Handler interface {
	// HandleMessage is called for each frame; the returned bytes (an ACK, unframed)
	// are written back framed; nil = write nothing. frame is only valid until
	// HandleMessage returns. ctx carries the connection's logger (zerolog.Ctx) and
	// is cancelled when the server is forcibly closed, not when the peer hangs up,
	// so a message being stored is stored even if its sender has gone.
	HandleMessage(ctx context.Context, peer Peer, frame []byte) []byte

	// HandleTooLarge is called for an oversize frame (prefix = first bytes) so the
	// app can NAK (AR, ERR 207). The rest of the frame has been discarded and the
	// connection continues with the next frame. size is the full frame size.
	HandleTooLarge(ctx context.Context, peer Peer, prefix []byte, size int64) []byte
}

// Peer identifies the sending end of a connection.
type Peer struct {
	// Addr is the remote address (IPv4-mapped IPv6 addresses unmapped).
	Addr netip.AddrPort
	// ConnID numbers the server's connections from 1; it appears in the logs.
	ConnID uint64
	// TLS reports whether the connection uses TLS.
	TLS bool
	// ClientCertSubject is the common name (CN only) of the verified client
	// certificate with mutual TLS, or empty.
	ClientCertSubject string
}

// ServerConfig configures a Server. For the durations, MaxConns and
// MaxConnsPerPeer, zero means the default (Default* constants) and a negative
// value means no limit; the limits are on by default because every read must be
// bounded.
type ServerConfig struct {
	// MaxConns is the most connections served at once. When a new connection
	// arrives at the cap, the idle connection that has been idle longest (no
	// frame started since its last ACK, or since it opened) is closed to make
	// room (counted in Stats.ConnsEvictedIdle): otherwise connections that
	// connect and send nothing would lock every real sender out until the idle
	// timeout, and again as soon as they reconnect. A connection receiving a
	// frame, in the Handler or writing its ACK is never closed this way, so no
	// message being stored loses its ACK; an evicted sender's interface engine
	// reconnects when it next has a message. Only when every connection is busy
	// is the new one refused: accepted and closed at once (counted in
	// Stats.ConnsRejectedLimit) rather than left in the kernel's accept queue,
	// where a sender believes it is connected and waits for ACK timeouts; a
	// prompt close makes its interface engine retry or fail over immediately.
	MaxConns int
	// MaxConnsPerPeer is the most connections served at once from one source
	// IP address, so that one host cannot take every slot. At the cap, that
	// peer's own longest-idle connection is evicted for its new one (counted in
	// Stats.ConnsEvictedIdle); if all of them are busy the new connection is
	// refused (Stats.ConnsRejectedPerPeer). Other peers' connections are never
	// evicted for a peer at its own cap.
	MaxConnsPerPeer int
	// MaxFrameSize is the largest frame accepted; zero means DefaultMaxFrameSize.
	// Larger frames go to Handler.HandleTooLarge.
	MaxFrameSize int
	// ReadTimeout bounds the time to receive the rest of a frame once its start
	// has arrived (counted from the first wait for more of its bytes; a frame
	// that arrives whole needs none), and the TLS handshake. Trickling bytes
	// does not extend it.
	ReadTimeout time.Duration
	// IdleTimeout bounds the silence before a frame starts (after connecting or
	// after the previous ACK); the connection is then closed.
	IdleTimeout time.Duration
	// WriteTimeout bounds writing one ACK.
	WriteTimeout time.Duration
	// KeepAlive is the TCP keep-alive idle time; see DefaultKeepAlive.
	KeepAlive time.Duration
	// TLS, when set, makes the server speak TLS (at least TLS 1.2, raised if lower).
	// For mutual TLS (IHE ATNA node authentication) set ClientAuth to
	// tls.RequireAndVerifyClientCert and ClientCAs to the senders' CA.
	TLS *tls.Config
	// AllowedNetworks, when not empty, lists the peer networks allowed to connect;
	// connections from other addresses are closed at accept, before anything is
	// read from them, logged (rate-limited, peer address only) and counted in
	// Stats.ConnsRejectedNetwork. Prefixes of IPv4-mapped IPv6 addresses
	// (::ffff:10.0.0.0/104) match the IPv4 peers they map. The sending-facility
	// (MSH-4) allow-list belongs to the Handler.
	AllowedNetworks []netip.Prefix
	// Logger receives connection-level logs (conn id, peer, sizes, durations; never
	// message content). The zero Logger discards them.
	Logger zerolog.Logger
}

// Stats is a snapshot of a Server's counters, for export as metrics. The counters
// only grow, except ActiveConns.
type Stats struct {
	ConnsAccepted        uint64 // connections accepted and served
	ConnsRejectedLimit   uint64 // connections refused because MaxConns was reached and every connection was busy
	ConnsRejectedPerPeer uint64 // connections refused because their peer had MaxConnsPerPeer busy connections
	ConnsRejectedNetwork uint64 // connections refused because the peer was not in AllowedNetworks
	ConnsEvictedIdle     uint64 // idle connections closed to admit a new one at MaxConns or MaxConnsPerPeer
	TLSHandshakeErrors   uint64 // TLS handshakes that failed or timed out
	Frames               uint64 // frames passed to HandleMessage
	FrameBytes           uint64 // bytes of those frames
	BytesSkipped         uint64 // bytes outside frames, and frames cut short
	OversizeFrames       uint64 // frames passed to HandleTooLarge
	ReadTimeouts         uint64 // connections closed because a started frame did not finish in time
	IdleTimeouts         uint64 // connections closed after IdleTimeout without a frame
	WriteErrors          uint64 // ACKs that could not be written (peer gone, write timeout)
	WriteTimeouts        uint64 // those of WriteErrors that hit WriteTimeout (a peer not reading)
	HandlerPanics        uint64 // panics recovered from the Handler
	ActiveConns          int    // connections being served now
}

type counters struct {
	connsAccepted, connsRejectedLimit, connsRejectedNetwork, tlsHandshakeErrors atomic.Uint64
	connsRejectedPerPeer, connsEvictedIdle                                      atomic.Uint64
	frames, frameBytes, bytesSkipped, oversizeFrames                            atomic.Uint64
	readTimeouts, idleTimeouts, writeErrors, writeTimeouts, handlerPanics       atomic.Uint64
}

// Server accepts MLLP connections and passes their frames to a Handler, one
// goroutine per connection, answering each frame with the Handler's ACK before
// reading the next (MLLP is request/response, so messages on one connection are
// handled strictly in order).
type Server struct {
	cfg ServerConfig
	h   Handler
	log zerolog.Logger
	// rejectLog limits the logging of refused and evicted connections.
	rejectLog rateLog
	tls       *tls.Config
	allowed   []netip.Prefix
	// epoch is the origin of conn.lastActive (monotonic).
	epoch time.Time

	nextID     atomic.Uint64
	active     atomic.Int64
	inShutdown atomic.Bool
	stats      counters

	mu        sync.Mutex
	listeners map[*trackedListener]struct{}
	addr      net.Addr
	conns     map[*conn]struct{}
	perPeer   map[netip.Addr]int // connections in conns by peer address
	wg        sync.WaitGroup     // connection goroutines
	done      chan struct{}      // closed on Shutdown: wakes the accept back-off
	doneOnce  sync.Once
	idleOnce  sync.Once
	idle      chan struct{} // closed when every connection goroutine has ended
}

// NewServer returns a Server with cfg (zero fields defaulted) calling h.
// It panics if h is nil.
func NewServer(cfg ServerConfig, h Handler) *Server {
	if h == nil {
		panic("mllp: NewServer with a nil Handler")
	}
	cfg.MaxConns = orDefault(cfg.MaxConns, DefaultMaxConns)
	cfg.MaxConnsPerPeer = orDefault(cfg.MaxConnsPerPeer, DefaultMaxConnsPerPeer)
	if cfg.MaxFrameSize <= 0 {
		cfg.MaxFrameSize = DefaultMaxFrameSize
	}
	cfg.ReadTimeout = orDefault(cfg.ReadTimeout, DefaultReadTimeout)
	cfg.IdleTimeout = orDefault(cfg.IdleTimeout, DefaultIdleTimeout)
	cfg.WriteTimeout = orDefault(cfg.WriteTimeout, DefaultWriteTimeout)
	cfg.KeepAlive = orDefault(cfg.KeepAlive, DefaultKeepAlive)
	s := &Server{
		cfg:       cfg,
		h:         h,
		log:       cfg.Logger,
		rejectLog: rateLog{interval: rejectLogInterval, now: time.Now},
		epoch:     time.Now(),
		listeners: make(map[*trackedListener]struct{}),
		conns:     make(map[*conn]struct{}),
		perPeer:   make(map[netip.Addr]int),
		done:      make(chan struct{}),
		idle:      make(chan struct{}),
	}
	if cfg.TLS != nil {
		s.tls = tlsAtLeast12(cfg.TLS)
	}
	for _, p := range cfg.AllowedNetworks {
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
			// Peers are unmapped (see Peer.Addr), so match them as IPv4.
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		s.allowed = append(s.allowed, p.Masked())
	}
	return s
}

func orDefault[T ~int | ~int64](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

// tlsAtLeast12 returns a copy of c requiring TLS 1.2 or later.
func tlsAtLeast12(c *tls.Config) *tls.Config {
	c = c.Clone()
	if c.MinVersion < tls.VersionTLS12 {
		c.MinVersion = tls.VersionTLS12
	}
	return c
}

// Stats returns a snapshot of the server's counters.
func (s *Server) Stats() Stats {
	c := &s.stats
	return Stats{
		ConnsAccepted:        c.connsAccepted.Load(),
		ConnsRejectedLimit:   c.connsRejectedLimit.Load(),
		ConnsRejectedPerPeer: c.connsRejectedPerPeer.Load(),
		ConnsRejectedNetwork: c.connsRejectedNetwork.Load(),
		ConnsEvictedIdle:     c.connsEvictedIdle.Load(),
		TLSHandshakeErrors:   c.tlsHandshakeErrors.Load(),
		Frames:               c.frames.Load(),
		FrameBytes:           c.frameBytes.Load(),
		BytesSkipped:         c.bytesSkipped.Load(),
		OversizeFrames:       c.oversizeFrames.Load(),
		ReadTimeouts:         c.readTimeouts.Load(),
		IdleTimeouts:         c.idleTimeouts.Load(),
		WriteErrors:          c.writeErrors.Load(),
		WriteTimeouts:        c.writeTimeouts.Load(),
		HandlerPanics:        c.handlerPanics.Load(),
		ActiveConns:          s.ActiveConns(),
	}
}

// ActiveConns returns the number of connections being served.
func (s *Server) ActiveConns() int { return int(s.active.Load()) }

// Addr returns the address of the first listener passed to Serve (or opened by
// ListenAndServe), or nil before that.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// ListenAndServe listens on the TCP address addr (DefaultAddr if empty) and calls
// Serve. It returns ErrServerClosed after Shutdown.
func (s *Server) ListenAndServe(addr string) error {
	if s.inShutdown.Load() {
		return ErrServerClosed
	}
	if addr == "" {
		addr = DefaultAddr
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("mllp: listening on %s: %w", addr, err)
	}
	return s.Serve(ln)
}

// trackedListener closes its listener once, however many times it is closed.
type trackedListener struct {
	net.Listener
	once sync.Once
	err  error
}

func (l *trackedListener) Close() error {
	l.once.Do(func() { l.err = l.Listener.Close() })
	return l.err
}

// Serve accepts connections on ln and serves each in its own goroutine. It closes
// ln when it returns. Temporary accept errors (such as running out of file
// descriptors) are retried with back-off from 5 ms to 1 s, as net/http does. Serve
// returns ErrServerClosed after Shutdown, or the accept error that stopped it.
func (s *Server) Serve(ln net.Listener) error {
	l := &trackedListener{Listener: ln}
	defer l.Close()
	s.mu.Lock()
	if s.inShutdown.Load() {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.listeners[l] = struct{}{}
	if s.addr == nil {
		s.addr = ln.Addr()
	}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
	}()

	s.log.Info().Str("addr", ln.Addr().String()).Bool("tls", s.tls != nil).
		Int("max_conns", s.cfg.MaxConns).Int("max_conns_per_peer", s.cfg.MaxConnsPerPeer).
		Int("allowed_networks", len(s.allowed)).Int("max_frame", s.cfg.MaxFrameSize).Msg("mllp listening")
	var delay time.Duration
	for {
		rw, err := l.Accept()
		if err != nil {
			if s.inShutdown.Load() {
				return ErrServerClosed
			}
			if isTemporary(err) {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.log.Warn().Err(err).Dur("retry_in", delay).Msg("mllp accept error")
				t := time.NewTimer(delay)
				select {
				case <-t.C:
				case <-s.done:
					t.Stop()
				}
				continue
			}
			return fmt.Errorf("mllp: accepting on %s: %w", ln.Addr(), err)
		}
		delay = 0
		s.accept(rw)
	}
}

// isTemporary reports whether an accept error is worth retrying.
func isTemporary(err error) bool {
	if errors.Is(err, net.ErrClosed) {
		return false
	}
	// Temporary is deprecated for general errors, but it is still how the
	// runtime marks EMFILE, ENFILE, ECONNABORTED and friends on Accept.
	var te interface{ Temporary() bool }
	return errors.As(err, &te) && te.Temporary()
}

// accept admits or rejects a new connection: a peer outside AllowedNetworks is
// refused; at MaxConnsPerPeer or MaxConns the longest-idle connection (of the
// same peer, or of any peer) is evicted for it, and only if none is idle is the
// new connection refused. Nothing is read from a refused connection.
func (s *Server) accept(rw net.Conn) {
	addr := addrPort(rw.RemoteAddr())
	if len(s.allowed) > 0 && !s.isAllowed(addr.Addr()) {
		s.stats.connsRejectedNetwork.Add(1)
		s.rejectEvent(reasonNotAllowed, addr).Msg("mllp connection rejected: peer not in allowed networks")
		rw.Close()
		return
	}
	s.mu.Lock()
	if s.inShutdown.Load() {
		s.mu.Unlock()
		rw.Close()
		return
	}
	ip := addr.Addr()
	var victim *conn
	var limit string // the cap that made the eviction necessary
	switch {
	case s.cfg.MaxConnsPerPeer > 0 && ip.IsValid() && s.perPeer[ip] >= s.cfg.MaxConnsPerPeer:
		// (A listener whose peers have no IP address, such as a Unix socket,
		// has no per-peer cap: all its peers would share one.)
		victim, limit = s.evictLocked(ip, true), "max_conns_per_peer"
		if victim == nil {
			n := s.perPeer[ip]
			s.mu.Unlock()
			s.stats.connsRejectedPerPeer.Add(1)
			s.rejectEvent(reasonPerPeer, addr).Int("max_conns_per_peer", s.cfg.MaxConnsPerPeer).Int("peer_conns", n).
				Msg("mllp connection rejected: too many busy connections from this peer")
			rw.Close()
			return
		}
	case s.cfg.MaxConns > 0 && len(s.conns) >= s.cfg.MaxConns:
		victim, limit = s.evictLocked(netip.Addr{}, false), "max_conns"
		if victim == nil {
			s.mu.Unlock()
			s.stats.connsRejectedLimit.Add(1)
			s.rejectEvent(reasonLimit, addr).Int("max_conns", s.cfg.MaxConns).
				Msg("mllp connection rejected: too many connections, all busy")
			rw.Close()
			return
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &conn{
		srv:    s,
		raw:    rw,
		cancel: cancel,
		peer:   Peer{Addr: addr, ConnID: s.nextID.Add(1)},
		start:  time.Now(),
	}
	c.lastActive.Store(int64(time.Since(s.epoch)))
	if tc, ok := rw.(*tls.Conn); ok { // from tls.NewListener
		c.raw, c.preTLS = tc.NetConn(), tc
	}
	c.log = s.log.With().Uint64("conn_id", c.peer.ConnID).Str("peer", addr.String()).Logger()
	s.conns[c] = struct{}{}
	s.perPeer[ip]++
	s.active.Add(1)
	s.wg.Add(1)
	s.mu.Unlock()
	s.stats.connsAccepted.Add(1)
	if victim != nil {
		s.stats.connsEvictedIdle.Add(1)
		idle := time.Duration(int64(time.Since(s.epoch)) - victim.lastActive.Load())
		s.rejectEvent(reasonEvictedIdle, addr).Str("limit", limit).Uint64("evicted_conn_id", victim.peer.ConnID).
			Str("evicted_peer", victim.peer.Addr.String()).Dur("evicted_idle", idle).Uint64("conn_id", c.peer.ConnID).
			Msg("mllp idle connection evicted to admit a new one")
	}
	go c.serve(c.log.WithContext(ctx))
}

// evictLocked closes the connection that has been idle longest (only those of
// peer ip when samePeer) and takes it off the server's books, so that its slot
// is free at once; its goroutine ends on its own. Busy connections are never
// chosen. It returns nil when no connection is idle. Called with s.mu held.
func (s *Server) evictLocked(ip netip.Addr, samePeer bool) *conn {
	// A candidate may start a frame between the scan and the eviction; then
	// scan again. Each retry follows a connection's progress, and the retries
	// are bounded all the same.
	for range len(s.conns) + 1 {
		var victim *conn
		var oldest int64
		for c := range s.conns {
			if samePeer && c.peer.Addr.Addr() != ip {
				continue
			}
			if st := c.state.Load(); st != connIdle && st != connNew {
				continue
			}
			if t := c.lastActive.Load(); victim == nil || t < oldest {
				victim, oldest = c, t
			}
		}
		if victim == nil {
			return nil
		}
		if victim.evict() {
			s.removeLocked(victim)
			return victim
		}
	}
	return nil
}

// removeLocked takes c off the server's books if it is still on them. Called
// with s.mu held.
func (s *Server) removeLocked(c *conn) {
	if _, ok := s.conns[c]; !ok {
		return
	}
	delete(s.conns, c)
	ip := c.peer.Addr.Addr()
	if s.perPeer[ip] <= 1 {
		delete(s.perPeer, ip)
	} else {
		s.perPeer[ip]--
	}
}

// admission is why a connection was refused or evicted.
type admission int

// The admission reasons; their names are the reason label of the metric
// resultgate_mllp_connections_rejected_total and the reason of the log line.
const (
	reasonLimit       admission = iota // MaxConns reached, every connection busy
	reasonPerPeer                      // MaxConnsPerPeer reached, every connection of the peer busy
	reasonNotAllowed                   // peer outside AllowedNetworks
	reasonEvictedIdle                  // an idle connection closed to admit a new one
	numAdmissions
)

var admissionNames = [numAdmissions]string{"limit", "per_peer", "not_allowed", "evicted_idle"}

func (a admission) String() string { return admissionNames[a] }

// rejectEvent returns a warning about a refused or evicted connection from
// peer, or nil (on which zerolog's methods do nothing) when a line of the same
// reason was logged less than rejectLogInterval ago. The line says how many
// lines of its reason were held back since the previous one.
func (s *Server) rejectEvent(r admission, peer netip.AddrPort) *zerolog.Event {
	ok, suppressed := s.rejectLog.allow(r)
	if !ok {
		return nil
	}
	return s.log.Warn().Str("reason", r.String()).Str("peer", peer.String()).
		Uint64("suppressed", suppressed).Dur("log_interval", s.rejectLog.interval)
}

// rateLog lets at most one log line per admission reason through per interval
// and counts the lines it holds back.
type rateLog struct {
	interval time.Duration
	now      func() time.Time

	mu         sync.Mutex
	next       [numAdmissions]time.Time
	suppressed [numAdmissions]uint64
}

// allow reports whether a line of reason r may be logged now and, if so, how
// many were held back since the previous one (the count then restarts).
func (l *rateLog) allow(r admission) (ok bool, suppressed uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if now.Before(l.next[r]) {
		l.suppressed[r]++
		return false, 0
	}
	l.next[r] = now.Add(l.interval)
	suppressed, l.suppressed[r] = l.suppressed[r], 0
	return true, suppressed
}

func (s *Server) isAllowed(a netip.Addr) bool {
	for _, p := range s.allowed {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// addrPort converts a remote address, unmapping IPv4-mapped IPv6 addresses.
func addrPort(a net.Addr) netip.AddrPort {
	var ap netip.AddrPort
	switch a := a.(type) {
	case *net.TCPAddr:
		ap = a.AddrPort()
	default:
		if a != nil {
			ap, _ = netip.ParseAddrPort(a.String())
		}
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// Shutdown stops the server gracefully: it closes the listeners, closes the
// connections waiting for a frame, lets connections that are reading a frame or
// running HandleMessage finish and write their ACK (they close afterwards), and
// waits for every connection to end. If ctx ends first, Shutdown closes the
// remaining connections, cancels their Handler contexts and returns ctx.Err().
// Shutdown may be called more than once and concurrently.
func (s *Server) Shutdown(ctx context.Context) error {
	s.inShutdown.Store(true)
	s.doneOnce.Do(func() { close(s.done) })
	s.mu.Lock()
	var errs []error
	for l := range s.listeners {
		if err := l.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	// A connection that is busy now sees inShutdown when it next becomes idle
	// and closes itself; those idle now are closed here.
	for c := range s.conns {
		c.closeIfIdle()
	}
	s.mu.Unlock()
	s.idleOnce.Do(func() {
		go func() {
			s.wg.Wait()
			close(s.idle)
		}()
	})
	select {
	case <-s.idle:
		return errors.Join(errs...)
	case <-ctx.Done():
		s.mu.Lock()
		n := len(s.conns)
		for c := range s.conns {
			c.forceClose()
		}
		s.mu.Unlock()
		if n > 0 {
			s.log.Warn().Int("conns", n).Msg("mllp shutdown deadline reached; closed busy connections")
		}
		return ctx.Err()
	}
}

// Close stops the server at once: listeners and all connections are closed and
// Handler contexts cancelled. In-flight ACKs are lost; prefer Shutdown.
func (s *Server) Close() error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := s.Shutdown(ctx)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// Connection states, for Shutdown.
const (
	connNew     int32 = iota // accepted, TLS handshake not done
	connIdle                 // waiting for a frame to start
	connBusy                 // reading a frame, handling it or writing its ACK
	connClosed               // closed by Shutdown
	connEvicted              // closed while idle to admit a new connection
)

type conn struct {
	srv    *Server
	raw    net.Conn  // the TCP connection; closing it never blocks
	preTLS *tls.Conn // the connection from a TLS listener, or nil
	rwc    net.Conn  // raw, or the TLS connection over it
	peer   Peer
	log    zerolog.Logger
	cancel context.CancelFunc
	start  time.Time
	state  atomic.Int32
	// lastActive is when the connection last became idle (opened, or wrote
	// the ACK of a frame), as a duration since srv.epoch; eviction picks the
	// lowest.
	lastActive atomic.Int64

	frames int
	bytes  int64
}

// closeIfIdle closes the connection if it is not busy. Called with srv.mu held.
func (c *conn) closeIfIdle() {
	if c.state.CompareAndSwap(connIdle, connClosed) || c.state.CompareAndSwap(connNew, connClosed) {
		c.raw.Close()
	}
}

// evict closes the connection if it is idle (or not yet started), reporting
// whether it did. Called with srv.mu held.
func (c *conn) evict() bool {
	if c.state.CompareAndSwap(connIdle, connEvicted) || c.state.CompareAndSwap(connNew, connEvicted) {
		c.raw.Close()
		return true
	}
	return false
}

// closedByServer reports whether Shutdown or an eviction closed the connection.
func (c *conn) closedByServer() bool {
	st := c.state.Load()
	return st == connClosed || st == connEvicted
}

// forceClose closes the connection whatever its state.
func (c *conn) forceClose() {
	c.state.Store(connClosed)
	c.raw.Close()
	c.cancel()
}

// setBusy marks the connection busy, failing if Shutdown closed it.
func (c *conn) setBusy() bool {
	return c.state.CompareAndSwap(connIdle, connBusy) || c.state.Load() == connBusy
}

// setIdle marks the connection idle; it reports false when the connection must
// close instead (closed, or the server is shutting down).
func (c *conn) setIdle() bool {
	// After a frame, stored before the state changes, so that an eviction that
	// sees the connection idle sees when it became so. A new connection has
	// been idle since it was accepted (the TLS handshake does not count).
	if c.state.Load() == connBusy {
		c.lastActive.Store(int64(time.Since(c.srv.epoch)))
	}
	if !c.state.CompareAndSwap(connBusy, connIdle) && !c.state.CompareAndSwap(connNew, connIdle) {
		return false
	}
	// Shutdown sets inShutdown before looking at connection states, so either it
	// saw this connection idle and closes it, or this sees inShutdown.
	return !c.srv.inShutdown.Load()
}

func (c *conn) serve(ctx context.Context) {
	s := c.srv
	reason := "peer closed"
	defer func() {
		if tc, ok := c.rwc.(*tls.Conn); ok && !c.closedByServer() {
			// Say goodbye with close_notify (bounded by crypto/tls to 5 s):
			// TLS stacks of interface engines log a truncation attack otherwise.
			_ = tc.Close()
		}
		c.raw.Close()
		c.cancel()
		s.mu.Lock()
		s.removeLocked(c)
		s.mu.Unlock()
		s.active.Add(-1)
		c.log.Info().Str("reason", reason).Int("frames", c.frames).Int64("bytes", c.bytes).
			Dur("duration", time.Since(c.start)).Msg("mllp connection closed")
		s.wg.Done()
	}()

	c.setKeepAlive()
	c.rwc = c.raw
	if c.preTLS != nil || s.tls != nil {
		if err := c.handshake(ctx); err != nil {
			if c.closedByServer() {
				reason = c.closedReason()
				return
			}
			s.stats.tlsHandshakeErrors.Add(1)
			reason = "tls handshake failed"
			c.log.Warn().Err(err).Msg("mllp tls handshake failed")
			return
		}
	}
	c.log.Info().Bool("tls", c.peer.TLS).Str("client_cert_cn", c.peer.ClientCertSubject).Msg("mllp connection opened")

	r := NewReader(c.rwc, s.cfg.MaxFrameSize)
	r.onMore = c.frameStarted
	var skipped int64
	for {
		if !c.setIdle() {
			reason = c.closedReason()
			return
		}
		if err := c.rwc.SetReadDeadline(deadline(s.cfg.IdleTimeout)); err != nil {
			reason = "set deadline: " + err.Error()
			return
		}
		frame, err := r.ReadFrame()
		if n := r.Skipped() - skipped; n > 0 {
			skipped += n
			s.stats.bytesSkipped.Add(uint64(n))
			c.log.Debug().Int64("bytes", n).Msg("mllp bytes skipped outside frames")
		}
		// ReadFrame returns *FrameTooLargeError unwrapped; a type assertion
		// (unlike errors.As) keeps the variable off the heap.
		tooLarge, isTooLarge := err.(*FrameTooLargeError)
		if err != nil && !isTooLarge {
			reason = c.readFailure(err, r.inFrame())
			return
		}
		if !c.setBusy() {
			// Shutdown or an eviction closed the connection as this frame
			// arrived: leave it unhandled and unacknowledged; the sender will
			// send it again.
			reason = c.closedReason()
			return
		}
		var ack []byte
		var ok bool
		t0 := time.Now()
		if tooLarge != nil {
			s.stats.oversizeFrames.Add(1)
			c.log.Warn().Int64("size", tooLarge.Size).Int("max", tooLarge.Limit).Msg("mllp frame too large")
			ack, ok = c.call(ctx, nil, tooLarge)
		} else {
			c.frames++
			c.bytes += int64(len(frame))
			s.stats.frames.Add(1)
			s.stats.frameBytes.Add(uint64(len(frame)))
			ack, ok = c.call(ctx, frame, nil)
		}
		if !ok {
			reason = "handler panic"
			return
		}
		if ack != nil {
			if err := c.writeACK(ack); err != nil {
				s.stats.writeErrors.Add(1)
				if isTimeout(err) {
					s.stats.writeTimeouts.Add(1)
				}
				c.log.Warn().Err(err).Int("ack_size", len(ack)).Msg("mllp writing ACK failed")
				reason = "ack write failed"
				return
			}
		}
		if e := c.log.Debug(); e.Enabled() {
			e.Int("size", len(frame)).Int("ack_size", len(ack)).Dur("duration", time.Since(t0)).Msg("mllp frame handled")
		}
	}
}

// frameStarted switches from the idle deadline to the per-frame read deadline
// when a frame has started and more bytes are needed.
func (c *conn) frameStarted() error {
	if !c.setBusy() {
		return errConnClosing
	}
	return c.rwc.SetReadDeadline(deadline(c.srv.cfg.ReadTimeout))
}

// closedReason names why the server closed the connection.
func (c *conn) closedReason() string {
	if c.state.Load() == connEvicted {
		return "evicted while idle"
	}
	return "server shutting down"
}

// readFailure counts and logs why reading stopped and returns the close reason.
func (c *conn) readFailure(err error, midFrame bool) string {
	s := c.srv
	switch {
	case c.closedByServer(), errors.Is(err, errConnClosing):
		return c.closedReason()
	case errors.Is(err, io.EOF):
		return "peer closed"
	case isTimeout(err):
		if midFrame {
			s.stats.readTimeouts.Add(1)
			c.log.Warn().Dur("read_timeout", s.cfg.ReadTimeout).Msg("mllp frame not finished in time; closing")
			return "read timeout"
		}
		s.stats.idleTimeouts.Add(1)
		c.log.Info().Dur("idle_timeout", s.cfg.IdleTimeout).Msg("mllp connection idle; closing")
		return "idle timeout"
	case errors.Is(err, io.ErrUnexpectedEOF):
		c.log.Warn().Msg("mllp peer closed in the middle of a frame")
		return "peer closed mid-frame"
	default:
		c.log.Warn().Err(err).Msg("mllp read error")
		return "read error"
	}
}

// call runs a Handler method, recovering a panic so that one bad message cannot
// stop the intake. The panic value is logged only for runtime errors: a value
// made by the handler could carry message content.
func (c *conn) call(ctx context.Context, frame []byte, tooLarge *FrameTooLargeError) (ack []byte, ok bool) {
	defer func() {
		if p := recover(); p != nil {
			c.srv.stats.handlerPanics.Add(1)
			buf := make([]byte, 16<<10)
			buf = buf[:runtime.Stack(buf, false)]
			e := c.log.Error().Str("panic_type", fmt.Sprintf("%T", p)).Bytes("stack", buf)
			if re, isRuntime := p.(runtime.Error); isRuntime {
				e = e.Str("panic", re.Error())
			}
			e.Msg("mllp handler panic; closing connection")
			ack, ok = nil, false
		}
	}()
	if tooLarge != nil {
		return c.srv.h.HandleTooLarge(ctx, c.peer, tooLarge.Prefix, tooLarge.Size), true
	}
	return c.srv.h.HandleMessage(ctx, c.peer, frame), true
}

func (c *conn) writeACK(ack []byte) error {
	if err := c.rwc.SetWriteDeadline(deadline(c.srv.cfg.WriteTimeout)); err != nil {
		return err
	}
	return WriteFrame(c.rwc, ack)
}

// setKeepAlive applies the keep-alive configuration (see DefaultKeepAlive).
func (c *conn) setKeepAlive() {
	tc, ok := c.raw.(*net.TCPConn)
	if !ok {
		return
	}
	ka := c.srv.cfg.KeepAlive
	if ka < 0 {
		_ = tc.SetKeepAlive(false)
		return
	}
	_ = tc.SetKeepAliveConfig(net.KeepAliveConfig{
		Enable:   true,
		Idle:     ka,
		Interval: max(ka/3, time.Second),
		Count:    3,
	})
}

// handshake runs the TLS handshake within ReadTimeout and records the peer's
// certificate common name.
// A listener that already yields TLS connections (tls.NewListener) is supported:
// its connections are handshaken the same way.
func (c *conn) handshake(ctx context.Context) error {
	tc := c.preTLS
	if tc == nil {
		tc = tls.Server(c.raw, c.srv.tls)
	}
	if d := c.srv.cfg.ReadTimeout; d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	if err := tc.HandshakeContext(ctx); err != nil {
		return err
	}
	c.rwc = tc
	c.peer.TLS = true
	if certs := tc.ConnectionState().PeerCertificates; len(certs) > 0 {
		c.peer.ClientCertSubject = certs[0].Subject.CommonName
	}
	return nil
}

// isTimeout reports whether err is a timeout (a deadline passed).
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// deadline returns the deadline d from now, or none for d <= 0.
func deadline(d time.Duration) time.Time {
	if d <= 0 {
		return time.Time{}
	}
	return time.Now().Add(d)
}
