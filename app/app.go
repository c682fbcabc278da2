// Package app assembles a resultgate daemon from its parts: the NATS connection
// (or the embedded server), the JetStream streams, the MLLP intake, the routing
// pipeline and the HTTP endpoints. cmd/resultgate is a thin wrapper over it, and
// tests embed it directly.
package app

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	portalfeed "github.com/resultgate/resultgate/router/feed"

	"github.com/resultgate/resultgate/router/api"
	"github.com/resultgate/resultgate/router/audit"
	"github.com/resultgate/resultgate/router/pipeline"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/resultgate/resultgate/auth"
	"github.com/resultgate/resultgate/config"
	"github.com/resultgate/resultgate/fhirmap"
	"github.com/resultgate/resultgate/forwarder"
	"github.com/resultgate/resultgate/hl7/mllp"
	"github.com/resultgate/resultgate/httpapi"
	"github.com/resultgate/resultgate/router/bus"
	"github.com/resultgate/resultgate/router/intake"
	"github.com/resultgate/resultgate/router/notify/deliver"
	"github.com/resultgate/resultgate/web"
)

// DefaultStopTimeout bounds an orderly shutdown. Interface engines wait 10-30 s
// for an ACK, so in-flight stores get most of it.
const DefaultStopTimeout = 25 * time.Second

// minPartitionKey is the shortest accepted partition secret (128 bits).
const minPartitionKey = 16

// App is one running resultgate instance.
type App struct {
	cfg   config.Config
	roles roles    // the parts of resultgate this instance runs (cfg.Roles)
	secs  Sections // the sections of cfg owned by other packages, decoded by Start
	log   zerolog.Logger

	lock *dirLock // the data directory's lock, held while the embedded server runs
	ns   *server.Server
	nc   *nats.Conn
	js   jetstream.JetStream

	intake   *intake.Intake
	pipeline *pipeline.Pipeline
	// natsAPI is the request/reply API (resultgate.api.>) over the pipeline.
	natsAPI  *api.Server
	fwd      *forwarder.Forwarder
	notify   *deliver.Deliverer // notification delivery; nil without receivers
	mllpSrv  *mllp.Server
	httpSrv  *http.Server
	mllpLn   net.Listener
	httpLn   net.Listener
	registry *prometheus.Registry
	// clock is the pipeline's clock (decisions, deadlines, the scheduler's
	// ticks); nil is the system clock. This package's tests set it before
	// Start so a deadline of hours passes without waiting for it.
	clock pipeline.Clock
	// httpCancel cancels the base context of every HTTP request (stopHTTP).
	httpCancel context.CancelFunc
	// onCallWaiting is the last count of results escalated to on-call that
	// notifications carry (waitingHolds).
	onCallWaiting waitingCount

	// audit watches the audit trail's integrity and writes its checkpoints
	// (/readyz asks it); stopAudit ends its rounds.
	audit     *audit.Monitor
	stopAudit context.CancelFunc

	stopping atomic.Bool
	stopOnce sync.Once
	stopErr  error
	errc     chan error
	wg       sync.WaitGroup
}

// New returns an App for cfg; Start brings it up.
func New(cfg config.Config, log zerolog.Logger) *App {
	return &App{cfg: cfg, roles: rolesOf(cfg), log: log, errc: make(chan error, 4), registry: newRegistry()}
}

// Start brings every component up in dependency order and binds the listeners.
// On error it stops what it started.
func (a *App) Start(ctx context.Context) (err error) {
	if err := a.cfg.Validate(); err != nil {
		return fmt.Errorf("invalid configuration:\n%w", a.cfg.Locate(err))
	}
	secs, err := LoadSections(a.cfg)
	if err != nil {
		return fmt.Errorf("invalid configuration:\n%w", a.cfg.Locate(err))
	}
	for _, w := range secs.Warnings {
		a.log.Warn().Str("key", w.Key).Int("line", w.Line).Msg(w.Msg)
	}
	a.secs = secs
	a.warnRoles()
	defer func() {
		if err != nil {
			stopCtx, cancel := context.WithTimeout(context.Background(), DefaultStopTimeout)
			defer cancel()
			err = errors.Join(err, a.Stop(stopCtx))
		}
	}()
	if err := a.startNATS(ctx); err != nil {
		return err
	}
	secret, err := a.partitionSecret()
	if err != nil {
		return err
	}
	if a.roles.service() {
		// The audit trail's integrity is watched (and checkpointed) where
		// the trail is written: the pipeline and the API.
		a.startAuditIntegrity(ctx, secret)
	}
	if a.roles.intake {
		a.intake = intake.New(a.js, intake.Config{
			AcceptTypes:       a.cfg.Intake.AcceptTypes,
			AllowedFacilities: a.cfg.Intake.AllowedFacilities,
			PartitionSecret:   secret,
			Partitions:        a.cfg.Intake.Partitions,
			StoreTimeout:      a.cfg.Intake.StoreTimeout,
			AckMode:           intake.AckMode(a.cfg.Intake.AckMode),
			ObserveStore:      a.storeLatency(),
		}, a.log)
	}
	if a.roles.service() {
		if err := a.startPipeline(ctx, secret); err != nil {
			return err
		}
	}
	if a.roles.pipeline {
		if err := a.startForwarder(ctx); err != nil {
			return err
		}
	}
	if a.roles.intake {
		if err := a.startMLLP(); err != nil {
			return err
		}
	}
	if err := a.startHTTP(ctx); err != nil {
		return err
	}
	if a.roles.intake {
		a.registerMetrics()
	}
	if a.pipeline != nil {
		a.registerPipelineMetrics()
	}
	a.registerForwarderMetrics()
	a.registerNotifyMetrics()
	ev := a.log.Info()
	if a.ns != nil && a.cfg.NATS.Listen != "" {
		ev = ev.Str("nats", a.ns.ClientURL())
	}
	if a.mllpLn != nil {
		ev = ev.Str("mllp", a.mllpLn.Addr().String())
	}
	ev.Strs("roles", roleNames(a.cfg.Roles)).
		Str("http", a.httpLn.Addr().String()).
		Str("durability", string(a.cfg.Durability)).
		Bool("embedded_nats", a.ns != nil).
		Msg("resultgate started")
	return nil
}

func (a *App) startPipeline(ctx context.Context, secret []byte) error {
	pol, err := newPolicy(a.secs.Policy, a.secs.Rules)
	if err != nil {
		return err
	}
	hc := a.secs.Holds
	if err := pipeline.EnsureBuckets(ctx, a.js, a.cfg.NATS.Replicas); err != nil {
		return err
	}
	enc, err := portalfeed.NewFHIREncoderOptions(fhirmap.Options{
		Location: pol.Location(), Validate: a.cfg.FHIR.Validate,
		Patient: a.cfg.FHIR.Patient, IdentifierSystems: a.cfg.FHIR.IdentifierSystems,
	})
	if err != nil {
		return err
	}
	p, err := pipeline.New(a.nc, pipeline.Config{
		Holds: hc, Partitions: a.cfg.Intake.Partitions, Secret: secret, Policy: pol,
		FHIR: enc, Replicas: a.cfg.NATS.Replicas, Logger: a.log, Clock: a.clock,
		NoClassify: !a.roles.pipeline, NoBackground: !a.roles.pipeline,
	})
	if err != nil {
		return err
	}
	if err := a.startNotify(ctx, pol.Location()); err != nil {
		return err
	}
	if err := p.Start(ctx); err != nil {
		return err
	}
	a.pipeline = p
	if !a.roles.api {
		return nil
	}
	srv, err := api.Start(a.nc, api.DefaultQueue, p.Service())
	if err != nil {
		return errors.Join(err, p.Stop(ctx))
	}
	a.natsAPI = srv
	return nil
}

// startForwarder starts the optional outbound MLLP forwarder of the portal feed.
func (a *App) startForwarder(ctx context.Context) error {
	fc := a.secs.Forwarder
	if !fc.Enabled {
		return nil
	}
	f, err := forwarder.New(a.js, fc, a.log)
	if err != nil {
		return err
	}
	if err := f.Start(ctx); err != nil {
		return err
	}
	a.fwd = f
	return nil
}

// Service returns the routing pipeline's Go API (holds, releases, Consents,
// audit); nil before Start and on an instance with neither the pipeline nor
// the api role.
func (a *App) Service() *pipeline.Service {
	if a.pipeline == nil {
		return nil
	}
	return a.pipeline.Service()
}

func (a *App) startNATS(ctx context.Context) error {
	cc := bus.ConnConfig{
		URL: a.cfg.NATS.URL, CredsFile: a.cfg.NATS.CredsFile, CAFile: a.cfg.NATS.CAFile,
		CertFile: a.cfg.NATS.CertFile, KeyFile: a.cfg.NATS.KeyFile, Logger: a.log,
	}
	if a.cfg.NATS.URL == "" {
		if err := os.MkdirAll(a.cfg.DataDir, 0o750); err != nil {
			return fmt.Errorf("creating data directory: %w", err)
		}
		// Before the server opens the store: a second server on the same
		// store would rebuild (and corrupt) the first one's stream state.
		lock, err := lockDataDir(a.cfg.DataDir)
		if err != nil {
			return err
		}
		a.lock = lock
		ns, err := bus.StartEmbedded(bus.EmbeddedConfig{
			DataDir: a.cfg.DataDir, Listen: a.cfg.NATS.Listen, Durability: a.cfg.Durability, Logger: a.log,
		})
		if err != nil {
			return err
		}
		a.ns = ns
		cc.Server = ns
		if a.cfg.NATS.Listen != "" {
			// The server admits only its NKey users, in-process too.
			cc.CredsFile = bus.ServiceCredsFile(a.cfg.DataDir)
		}
	}
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	nc, err := bus.Connect(cctx, cc)
	if err != nil {
		return err
	}
	a.nc = nc
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("JetStream: %w", err)
	}
	a.js = js
	if err := bus.EnsureNamed(cctx, js, bus.StreamsConfig{
		Replicas: a.cfg.NATS.Replicas, DuplicateWindow: a.cfg.Intake.DuplicateWindow,
	}, a.roles.ensureNames()); err != nil {
		return err
	}
	return nil
}

// startAuditIntegrity checks the audit trail (a missing, truncated, rewritten
// or reconfigured AUDIT is logged with what to do, and fails /readyz until an
// operator acts; nothing recreates it), writes a first checkpoint of an intact
// trail before the pipeline appends to it, and starts the monitor's rounds.
func (a *App) startAuditIntegrity(ctx context.Context, secret []byte) {
	a.audit = audit.NewMonitor(a.js, audit.CheckpointKey(secret), a.log)
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if _, err := a.audit.Round(cctx); err != nil {
		a.log.Error().Err(err).Msg("audit trail integrity check could not run")
	}
	rctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	a.stopAudit = stop
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		a.audit.Run(rctx, audit.DefaultCheckpointInterval)
	}()
}

// partitionSecret reads the key that makes patient hashes irreversible, creating
// it under the data directory on first start of a single-node install.
func (a *App) partitionSecret() ([]byte, error) {
	path := a.cfg.Intake.PartitionKeyFile
	if path == "" {
		path = filepath.Join(a.cfg.DataDir, "partition.key")
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			key := make([]byte, 32)
			if _, err := rand.Read(key); err != nil {
				return nil, fmt.Errorf("generating partition key: %w", err)
			}
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return nil, fmt.Errorf("creating partition key: %w", err)
			}
			_, werr := f.Write(key)
			if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
				return nil, fmt.Errorf("writing partition key: %w", err)
			}
			a.log.Info().Str("path", path).Msg("created partition key; back it up with the data directory")
		}
	}
	key, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading intake.partition_key_file: %w", err)
	}
	if len(key) < minPartitionKey {
		return nil, fmt.Errorf("intake.partition_key_file %s: %d bytes, need at least %d", path, len(key), minPartitionKey)
	}
	return key, nil
}

func loadServerTLS(t config.TLS) (*tls.Config, error) {
	if !t.Enabled() {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return nil, err
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if t.ClientCAFile != "" {
		pem, err := os.ReadFile(t.ClientCAFile)
		if err != nil {
			return nil, err
		}
		c.ClientCAs = x509.NewCertPool()
		if !c.ClientCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("no PEM certificates in %s", t.ClientCAFile)
		}
		c.ClientAuth = tls.VerifyClientCertIfGiven
		if t.RequireClientCert {
			c.ClientAuth = tls.RequireAndVerifyClientCert
		}
	}
	return c, nil
}

func (a *App) startMLLP() error {
	tc, err := loadServerTLS(a.cfg.MLLP.TLS)
	if err != nil {
		return fmt.Errorf("mllp.tls: %w", err)
	}
	nets, err := a.cfg.MLLP.Networks()
	if err != nil {
		return err
	}
	perPeer := a.cfg.MLLP.MaxConnsPerPeer
	if perPeer == 0 { // no per-peer cap; zero means the default to mllp
		perPeer = -1
	}
	a.mllpSrv = mllp.NewServer(mllp.ServerConfig{
		MaxConns: a.cfg.MLLP.MaxConns, MaxConnsPerPeer: perPeer, MaxFrameSize: a.cfg.MLLP.MaxFrameBytes,
		ReadTimeout: a.cfg.MLLP.ReadTimeout, IdleTimeout: a.cfg.MLLP.IdleTimeout,
		WriteTimeout: a.cfg.MLLP.WriteTimeout, KeepAlive: a.cfg.MLLP.KeepAlive,
		TLS: tc, AllowedNetworks: nets, Logger: a.log,
	}, a.intake)
	ln, err := net.Listen("tcp", a.cfg.MLLP.Addr)
	if err != nil {
		return fmt.Errorf("MLLP listener: %w", err)
	}
	a.mllpLn = ln
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		if err := a.mllpSrv.Serve(ln); err != nil && !errors.Is(err, mllp.ErrServerClosed) {
			a.errc <- fmt.Errorf("MLLP server: %w", err)
		}
	}()
	return nil
}

// AuthConfig returns the auth section with its defaults (tokens file under the
// data directory).
func AuthConfig(cfg config.Config) (auth.Config, error) {
	var s Sections
	err := sectionLoaders[config.SectionAuth](cfg, &s)
	return s.Auth, err
}

// mountAPI mounts the HTTP API and the web page (the api role) on mux.
func (a *App) mountAPI(ctx context.Context, mux *http.ServeMux) (*httpapi.API, error) {
	authn, err := auth.New(ctx, a.secs.Auth)
	if err != nil {
		return nil, err
	}
	api := httpapi.New(a.pipeline.Service(), authn, a.log).WithTokens(authn).WithConfig(a.cfg)
	api.Register(mux)
	var wo web.Options
	if wc := authn.WebConfig(); wc != nil {
		wo.TokenEndpoint = wc.TokenEndpoint // the page redeems its code there (CSP connect-src)
	} else if err := authn.WebError(); err != nil {
		a.log.Warn().Err(err).Msg("the web page offers token sign-in only; OIDC bearer tokens are still accepted")
	}
	web.RegisterWithOptions(mux, wo)
	return api, nil
}

func (a *App) startHTTP(ctx context.Context) error {
	tc, err := loadServerTLS(a.cfg.HTTP.TLS)
	if err != nil {
		return fmt.Errorf("http.tls: %w", err)
	}
	mux := a.newMux()
	var api *httpapi.API // nil without the api role: the operational endpoints only
	if a.roles.api {
		if api, err = a.mountAPI(ctx, mux); err != nil {
			return err
		}
	}
	// Every request's context derives from this one, cancelled at shutdown
	// (stopHTTP): a handler that reads the stores stops when it is.
	baseCtx, baseCancel := context.WithCancel(context.Background())
	a.httpCancel = baseCancel
	// Requests being served, for operators (a report or a stalled client
	// still running) and for the shutdown test, which must know its report
	// is in hand before it signals.
	inFlight := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: "resultgate", Name: "http_requests_in_flight",
		Help: "HTTP requests being served (the health, metrics, API and page endpoints).",
	})
	if err := a.registry.Register(inFlight); err != nil {
		return fmt.Errorf("registering resultgate_http_requests_in_flight: %w", err)
	}
	a.httpSrv = &http.Server{
		Handler:           promhttp.InstrumentHandlerInFlight(inFlight, mux),
		BaseContext:       func(net.Listener) context.Context { return baseCtx },
		ReadHeaderTimeout: httpReadHeaderTimeout,
		ReadTimeout:       httpReadTimeout,
		WriteTimeout:      httpWriteTimeout,
		IdleTimeout:       httpIdleTimeout,
		MaxHeaderBytes:    httpMaxHeaderBytes,
		TLSConfig:         tc,
		ErrorLog:          nil,
	}
	ln, err := net.Listen("tcp", a.cfg.HTTP.Addr)
	if err != nil {
		return fmt.Errorf("HTTP listener: %w", err)
	}
	a.httpLn = ln
	// The origins state changes may come from: configured, or the address
	// actually listened on (http.addr may name port 0).
	hc := a.cfg.HTTP
	hc.Addr = ln.Addr().String()
	if api != nil {
		api.WithOrigins(hc.Origins())
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		var err error
		if tc != nil {
			err = a.httpSrv.ServeTLS(ln, "", "")
		} else {
			err = a.httpSrv.Serve(ln)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.errc <- fmt.Errorf("HTTP server: %w", err)
		}
	}()
	return nil
}

// MLLPAddr returns the bound MLLP address; nil without the intake role.
func (a *App) MLLPAddr() net.Addr {
	if a.mllpLn == nil {
		return nil
	}
	return a.mllpLn.Addr()
}

// HTTPAddr returns the bound HTTP address.
func (a *App) HTTPAddr() net.Addr { return a.httpLn.Addr() }

// NATSClientURL is the URL of the embedded NATS server's client port ("" when
// the instance uses --nats-url): what `resultgate holds|consent|dead|audit`
// connect to.
func (a *App) NATSClientURL() string {
	if a.ns == nil {
		return ""
	}
	return a.ns.ClientURL()
}

// NATSOperatorCreds is the NKey seed file of the embedded server's "operator"
// user ("" without a listening embedded server): what the operator commands
// load from the data directory by default.
func (a *App) NATSOperatorCreds() string {
	if a.ns == nil || a.cfg.NATS.Listen == "" {
		return ""
	}
	return bus.OperatorCredsFile(a.cfg.DataDir)
}

// JetStream returns the JetStream context (for tests and tools).
func (a *App) JetStream() jetstream.JetStream { return a.js }

// Run starts the app, waits until ctx ends or a component fails, then stops it
// within DefaultStopTimeout.
func (a *App) Run(ctx context.Context) error {
	if err := a.Start(ctx); err != nil {
		return err
	}
	var runErr error
	select {
	case <-ctx.Done():
		a.log.Info().Msg("shutting down")
	case runErr = <-a.errc:
		a.log.Error().Err(runErr).Msg("component failed; shutting down")
	}
	stopCtx, cancel := context.WithTimeout(context.Background(), DefaultStopTimeout)
	defer cancel()
	return errors.Join(runErr, a.Stop(stopCtx))
}

// Stop shuts down in order, bounded by ctx: stop accepting MLLP and let
// in-flight stores finish and ACK, while the HTTP server and the NATS
// request/reply API stop (requests still running after stopGrace are
// cancelled) and then the pipeline (classify consumers finish the message in
// hand) and notification delivery (each worker finishes the attempt in
// hand), and the forwarder stops; then drain NATS, stop the embedded server
// and release the data directory's lock. The front doors and the pipeline
// must be done stopReserve before ctx's deadline, stuck or not, so the
// last steps (which cannot be interrupted) keep their time and the process
// ends within the bound. It is idempotent.
func (a *App) Stop(ctx context.Context) error {
	a.stopOnce.Do(func() {
		a.stopping.Store(true)
		phase, cancel := withReserve(ctx, stopReserve)
		defer cancel()
		var (
			mu   sync.Mutex
			errs []error
			wg   sync.WaitGroup
		)
		step := func(name string, f func() error) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := f(); err != nil {
					if name != "" {
						err = fmt.Errorf("%s: %w", name, err)
					}
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}()
		}
		if a.stopAudit != nil {
			a.stopAudit()
		}
		step("MLLP shutdown", func() error {
			if a.mllpSrv != nil {
				return a.mllpSrv.Shutdown(phase)
			}
			if a.mllpLn != nil {
				_ = a.mllpLn.Close()
			}
			return nil
		})
		if a.fwd != nil {
			step("forwarder stop", func() error { return a.fwd.Stop(phase) })
		}
		step("", func() error { // its errors name their step
			// The APIs call the pipeline's Service: they stop first, side
			// by side, each giving its requests stopGrace to finish.
			var api sync.WaitGroup
			var apiErrs [2]error
			api.Add(2)
			go func() {
				defer api.Done()
				if a.natsAPI != nil {
					gctx, cancel := context.WithTimeout(phase, stopGrace)
					defer cancel()
					if err := a.natsAPI.Stop(gctx); err != nil {
						apiErrs[0] = fmt.Errorf("NATS API stop: %w", err)
					}
				}
			}()
			go func() { defer api.Done(); apiErrs[1] = a.stopHTTP(phase) }()
			api.Wait()
			err := errors.Join(apiErrs[:]...)
			if a.pipeline != nil {
				if perr := a.pipeline.Stop(phase); perr != nil {
					err = errors.Join(err, fmt.Errorf("pipeline stop: %w", perr))
				}
			}
			if a.notify != nil {
				if nerr := a.notify.Stop(phase); nerr != nil {
					err = errors.Join(err, fmt.Errorf("notification delivery stop: %w", nerr))
				}
			}
			return err
		})
		wg.Wait()
		if a.nc != nil {
			errs = append(errs, drain(ctx, a.nc))
		}
		nsDown := true
		if a.ns != nil {
			a.ns.Shutdown()
			done := make(chan struct{})
			go func() { a.ns.WaitForShutdown(); close(done) }()
			select {
			case <-done:
			case <-ctx.Done():
				nsDown = false
				errs = append(errs, fmt.Errorf("embedded NATS shutdown: %w", ctx.Err()))
			}
		}
		if nsDown {
			// Only once the server has stopped writing the store; otherwise
			// the lock goes with the process.
			errs = append(errs, a.lock.release())
		}
		wait := make(chan struct{})
		go func() { a.wg.Wait(); close(wait) }()
		select {
		case <-wait:
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("waiting for servers: %w", ctx.Err()))
		}
		a.stopErr = errors.Join(errs...)
		a.log.Info().Err(a.stopErr).Msg("resultgate stopped")
	})
	return a.stopErr
}

// stopReserve is the part of the stop bound kept for the steps that come
// last and cannot be cut short: draining the NATS connection and stopping the
// embedded server (which syncs the store). Measured at well under a second;
// the rest is margin for a loaded machine.
const stopReserve = 4 * time.Second

// stopGrace is how long HTTP and NATS API requests in hand get to finish at
// shutdown before their contexts are cancelled: the API answers in
// milliseconds, so only a report or a stuck client takes longer.
const stopGrace = 3 * time.Second

// withReserve returns ctx with its deadline moved reserve earlier (by at most
// a fifth of the time left, for a short ctx).
func withReserve(ctx context.Context, reserve time.Duration) (context.Context, context.CancelFunc) {
	deadline, ok := ctx.Deadline()
	if !ok {
		return context.WithCancel(ctx)
	}
	return context.WithDeadline(ctx, deadline.Add(-min(reserve, time.Until(deadline)/5)))
}

// stopHTTP stops the HTTP server within ctx: no new connections, idle ones
// closed; requests in hand get stopGrace to finish, then every request's
// context is cancelled (a report in flight stops reading) and they get a
// moment to answer; connections still open after that are closed.
func (a *App) stopHTTP(ctx context.Context) error {
	if a.httpSrv == nil {
		return nil
	}
	gctx, cancel := context.WithTimeout(ctx, stopGrace)
	defer cancel()
	if err := a.httpSrv.Shutdown(gctx); err == nil {
		a.httpCancel()
		return nil
	}
	a.httpCancel()
	answer, cancel2 := context.WithTimeout(ctx, time.Second)
	defer cancel2()
	if err := a.httpSrv.Shutdown(answer); err == nil {
		return nil
	}
	a.log.Warn().Msg("HTTP requests still running at shutdown; closing their connections")
	if err := a.httpSrv.Close(); err != nil {
		return fmt.Errorf("HTTP close: %w", err)
	}
	return nil
}

// drain flushes pending publishes and closes nc, bounded by ctx.
func drain(ctx context.Context, nc *nats.Conn) error {
	closed := make(chan struct{})
	nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
	if err := nc.Drain(); err != nil {
		nc.Close()
		return nil
	}
	select {
	case <-closed:
		return nil
	case <-ctx.Done():
		nc.Close()
		return fmt.Errorf("NATS drain: %w", ctx.Err())
	}
}
