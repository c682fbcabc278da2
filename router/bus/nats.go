package bus

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/resultgate/resultgate/config"
)

// ErrServerNotReady is returned by StartEmbedded when the embedded NATS server
// does not become ready for connections within EmbeddedConfig.ReadyTimeout.
var ErrServerNotReady = errors.New("embedded NATS server not ready")

// ErrNoServer is returned by Connect when neither a URL nor an embedded server is
// given.
var ErrNoServer = errors.New("no NATS URL and no embedded server")

// DefaultMaxPayload is the embedded server's maximum message size. NATS defaults
// to 1 MiB; HL7 messages with embedded PDFs or images reach the MLLP default
// frame limit of 16 MiB, and the stored message also carries headers.
const DefaultMaxPayload = 32 << 20

// DefaultReadyTimeout bounds how long StartEmbedded waits for the server. Recovering
// a large JetStream store can take seconds; more than this is worth an error.
const DefaultReadyTimeout = 30 * time.Second

// EmbeddedConfig configures the NATS server that resultgate runs in-process when
// no --nats-url is given.
type EmbeddedConfig struct {
	// DataDir is resultgate's data directory; JetStream stores under
	// DataDir/nats/jetstream.
	DataDir string
	// Listen is the client address as host:port. Port -1 (or 0) picks a random
	// free port (tests); an empty Listen accepts in-process connections only.
	// A server that listens requires authentication: users "service" and
	// "operator" with the NKey seeds in DATA_DIR/nats (see EmbeddedUsers);
	// nothing unauthenticated reaches it.
	Listen string
	// Durability selects sync-always (fsync, the default when empty) or the
	// JetStream default flushing (os). See the package documentation.
	Durability config.Durability
	// ServerName names the server in logs and JetStream metadata; default
	// "resultgate".
	ServerName string
	// MaxPayload is the largest message the server accepts; default
	// DefaultMaxPayload.
	MaxPayload int32
	// ReadyTimeout bounds the wait for the server; default DefaultReadyTimeout.
	ReadyTimeout time.Duration
	// Logger receives the server's log lines. Debug level enables the server's
	// debug log (connections, JetStream events: no message content); the
	// protocol trace, which would log payloads, is never enabled.
	Logger zerolog.Logger
}

// StartEmbedded starts a NATS server with JetStream enabled and a file store under
// cfg.DataDir, and waits (bounded) until it accepts connections. When it listens
// on a port it admits only the users of EmbeddedUsers (creating their seeds at
// the first start); connect with ServiceCredsFile(cfg.DataDir) as
// ConnConfig.CredsFile. It installs no signal handlers: SIGTERM belongs to
// resultgate. The caller stops it with Shutdown and WaitForShutdown.
func StartEmbedded(cfg EmbeddedConfig) (*server.Server, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("embedded NATS: data directory is empty")
	}
	opts := &server.Options{
		ServerName: cfg.ServerName,
		JetStream:  true,
		StoreDir:   filepath.Join(cfg.DataDir, "nats"),
		NoSigs:     true,
		MaxPayload: cfg.MaxPayload,
		SyncAlways: cfg.Durability != config.DurabilityOS,
		DontListen: cfg.Listen == "",
		Debug:      cfg.Logger.GetLevel() <= zerolog.DebugLevel,
		// Never trace: nats-server's protocol trace logs message payloads,
		// which are PHI.
		Trace: false,
	}
	if opts.ServerName == "" {
		opts.ServerName = "resultgate"
	}
	if opts.MaxPayload == 0 {
		opts.MaxPayload = DefaultMaxPayload
	}
	switch cfg.Durability {
	case "", config.DurabilityFsync, config.DurabilityOS:
	default:
		return nil, fmt.Errorf("embedded NATS: unknown durability %q (want fsync or os)", cfg.Durability)
	}
	if cfg.Listen != "" {
		host, port, err := splitListen(cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("embedded NATS: listen address %q: %w", cfg.Listen, err)
		}
		opts.Host, opts.Port = host, port
		users, err := EmbeddedUsers(cfg.DataDir)
		if err != nil {
			return nil, fmt.Errorf("embedded NATS credentials: %w", err)
		}
		opts.Nkeys = users
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS: %w", err)
	}
	fatal := &fatalNote{}
	srv.SetLoggerV2(natsLogger{l: cfg.Logger.With().Str("component", "nats").Logger(), fatal: fatal}, opts.Debug, opts.Trace, false)
	srv.Start()
	timeout := cfg.ReadyTimeout
	if timeout <= 0 {
		timeout = DefaultReadyTimeout
	}
	for deadline := time.Now().Add(timeout); !srv.ReadyForConnections(100 * time.Millisecond); {
		if msg := fatal.get(); msg != "" {
			srv.Shutdown()
			srv.WaitForShutdown()
			return nil, fmt.Errorf("embedded NATS: %s: %w", msg, ErrServerNotReady)
		}
		if time.Now().After(deadline) {
			srv.Shutdown()
			srv.WaitForShutdown()
			return nil, fmt.Errorf("embedded NATS after %s: %w", timeout, ErrServerNotReady)
		}
	}
	if !srv.JetStreamEnabled() {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, fmt.Errorf("embedded NATS: JetStream did not start: %w", ErrServerNotReady)
	}
	return srv, nil
}

// splitListen parses host:port where port may be -1 or 0 for a random port.
func splitListen(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("parsing host:port: %w", err)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < -1 || port > 65535 {
		return "", 0, fmt.Errorf("invalid port %q", p)
	}
	if port == 0 {
		// NATS reads port 0 as "the default 4222"; resultgate means "any free port".
		port = server.RANDOM_PORT
	}
	if host == "" {
		host = "0.0.0.0"
	}
	return host, port, nil
}

// natsLogger adapts zerolog to the nats-server Logger interface. Fatalf logs at
// error level and does not exit: nothing below cmd/ ends the process. It
// keeps the first fatal message (when fatal is set), so that StartEmbedded can
// fail at once with the server's own reason (e.g. its port is in use) instead
// of waiting out the readiness timeout.
type natsLogger struct {
	l     zerolog.Logger
	fatal *fatalNote
}

// fatalNote holds the first fatal message of an embedded server.
type fatalNote struct {
	mu  sync.Mutex
	msg string
}

func (f *fatalNote) set(msg string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.msg == "" {
		f.msg = msg
	}
}

func (f *fatalNote) get() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.msg
}

func (n natsLogger) Noticef(format string, v ...any) { n.l.Info().Msgf(format, v...) }
func (n natsLogger) Warnf(format string, v ...any)   { n.l.Warn().Msgf(format, v...) }
func (n natsLogger) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	n.l.Error().Bool("fatal", true).Msg(msg)
	if n.fatal != nil {
		n.fatal.set(msg)
	}
}
func (n natsLogger) Errorf(format string, v ...any) { n.l.Error().Msgf(format, v...) }
func (n natsLogger) Debugf(format string, v ...any) { n.l.Debug().Msgf(format, v...) }
func (n natsLogger) Tracef(format string, v ...any) { n.l.Trace().Msgf(format, v...) }

// DefaultReconnectBuffer is how much a disconnected client buffers before
// publishes fail. The intake answers AE when a publish fails, so the buffer only
// smooths short reconnects.
const DefaultReconnectBuffer = 64 << 20

// ConnConfig configures the client connection, to the embedded server or to an
// existing NATS cluster.
type ConnConfig struct {
	// URL of an existing NATS server or cluster (comma-separated); when empty,
	// Server must be set.
	URL string
	// Server is the embedded server; the connection is made in-process (no TCP).
	Server *server.Server
	// CredsFile is a NATS credentials file: JWT and NKey seed, or a bare NKey
	// seed such as the embedded server's DATA_DIR/nats/service.nk (which must
	// be mode 0600).
	CredsFile string
	// CAFile verifies the server's TLS certificate.
	CAFile string
	// CertFile and KeyFile are the client certificate for mutual TLS.
	CertFile, KeyFile string
	// Name is the connection name shown by the server; default "resultgate".
	Name string
	// ReconnectBuffer is the bytes buffered while reconnecting; default
	// DefaultReconnectBuffer.
	ReconnectBuffer int
	// Logger receives connection state changes.
	Logger zerolog.Logger
}

// Connect opens a NATS connection that reconnects forever. The connect attempt is
// bounded by ctx's deadline (default 10 s).
func Connect(ctx context.Context, cfg ConnConfig) (*nats.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("connecting to NATS: %w", err)
	}
	log := cfg.Logger.With().Str("component", "nats-client").Logger()
	name := cfg.Name
	if name == "" {
		name = "resultgate"
	}
	buf := cfg.ReconnectBuffer
	if buf <= 0 {
		buf = DefaultReconnectBuffer
	}
	timeout := 10 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
		if timeout <= 0 {
			return nil, fmt.Errorf("connecting to NATS: %w", context.DeadlineExceeded)
		}
	}
	opts := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectJitter(100*time.Millisecond, time.Second),
		nats.ReconnectBufSize(buf),
		nats.Timeout(timeout),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			log.Warn().Err(err).Msg("NATS disconnected")
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info().Str("url", nc.ConnectedUrlRedacted()).Msg("NATS reconnected")
		}),
		nats.ClosedHandler(func(*nats.Conn) { log.Info().Msg("NATS connection closed") }),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			ev := log.Error().Err(err)
			if sub != nil {
				ev = ev.Str("subject", sub.Subject)
			}
			ev.Msg("NATS async error")
		}),
	}
	if cfg.CredsFile != "" {
		opt, err := CredsOption(cfg.CredsFile)
		if err != nil {
			return nil, fmt.Errorf("connecting to NATS: %w", err)
		}
		opts = append(opts, opt)
	}
	if cfg.CAFile != "" {
		opts = append(opts, nats.RootCAs(cfg.CAFile))
	}
	if cfg.CertFile != "" || cfg.KeyFile != "" {
		opts = append(opts, nats.ClientCert(cfg.CertFile, cfg.KeyFile))
	}
	url := cfg.URL
	switch {
	case url != "":
	case cfg.Server != nil:
		opts = append(opts, nats.InProcessServer(cfg.Server))
		url = "nats://in-process" // ignored by nats.go when InProcessServer is set
	default:
		return nil, ErrNoServer
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("connecting to NATS: %w", err)
	}
	return nc, nil
}
