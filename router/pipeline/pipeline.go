package pipeline

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	"github.com/resultgate/resultgate/router/feed"

	"github.com/resultgate/resultgate/router/dead"
	"github.com/resultgate/resultgate/router/hold"
	"github.com/resultgate/resultgate/router/notify"

	"github.com/resultgate/resultgate/router/holdview"

	"github.com/resultgate/resultgate/router/audit"

	"github.com/resultgate/resultgate/router/store"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/resultgate/resultgate/config"
	"github.com/resultgate/resultgate/router/bus"
)

// HoldsConfig is the "holds" section of the configuration.
type HoldsConfig struct {
	// ReminderBefore is how long before the deadline the ordering clinician is
	// reminded of an open hold; 0 disables reminders.
	ReminderBefore time.Duration `yaml:"reminder_before"`
	// EscalateBefore is how long before the deadline an open hold is escalated
	// to notify.oncall; 0 disables escalation.
	EscalateBefore time.Duration `yaml:"escalate_before"`
	// SchedulerTick is how often each instance looks for due deadlines,
	// reminders and escalations (a deadline fires at most this late).
	SchedulerTick time.Duration `yaml:"scheduler_tick"`
	// ReconcileEvery is how often released-but-unpublished holds are
	// re-published (also at start and after a failed publish). Keep it well
	// under the PORTAL duplicate window.
	ReconcileEvery time.Duration `yaml:"reconcile_every"`
	// Covering maps an ordering provider ID to the clinicians who may
	// acknowledge that provider's holds; the key "*" covers every provider.
	Covering map[string][]string `yaml:"covering"`
	// OnCall lists the clinicians who may override; empty accepts any caller
	// that states role oncall (the API's callers are authenticated upstream).
	OnCall []string `yaml:"oncall"`
	// MaxDeliver is how many times the classify step tries one inbound message
	// before it goes to the DEAD stream.
	MaxDeliver int `yaml:"max_deliver"`
	// RetryBackoff are the delays before the 2nd, 3rd, ... attempt; the last
	// repeats.
	RetryBackoff []time.Duration `yaml:"retry_backoff"`
	// AckWait is how long the server waits for an instance to finish one
	// message before redelivering it (to another instance).
	AckWait time.Duration `yaml:"ack_wait"`
	// ProcessTimeout is the budget of one classify attempt. It is enforced
	// even for work that does not look at its context (parsing and the
	// policy are pure CPU): the handler stops waiting at the budget, counts
	// a failed delivery, and the abandoned attempt can no longer write
	// (classify.go, runAttempt). At most half of AckWait, so the server never
	// redelivers a message whose attempt or dead-lettering is still running;
	// 0 (the default) means 5s, or half of AckWait when that is shorter.
	ProcessTimeout time.Duration `yaml:"process_timeout"`
	// DeadAfter bounds the wall-clock time one message may hold its
	// partition, from its first attempt on this instance: a failed attempt
	// is not retried when the retry could not finish within it (the backoff
	// plus ProcessTimeout), and the message goes to DEAD at once. It applies
	// beside MaxDeliver; whichever is reached first ends the retries.
	DeadAfter time.Duration `yaml:"dead_after"`
	// FallbackDeadline bounds a hold whose decision carried no deadline (the
	// policy always sets one; this is a guard so no hold is ever unbounded).
	FallbackDeadline time.Duration `yaml:"fallback_deadline"`
	// PatientFeedProcessingIDs are the MSH-11 processing IDs whose results
	// reach the patient feed (portal.>) and the forwarder; default [P]. Other
	// messages (T training, D debugging) are classified and decided the same
	// way but released to the test feed (test.portal.>). A test installation
	// may list T.
	PatientFeedProcessingIDs []string `yaml:"patient_feed_processing_ids"`
}

// feedsPatients reports whether a result with MSH-11.1 id goes to the
// patient feed.
func (h HoldsConfig) feedsPatients(id string) bool {
	for _, p := range h.PatientFeedProcessingIDs {
		if p == id {
			return true
		}
	}
	return false
}

// DefaultHoldsConfig returns the defaults of the holds section.
func DefaultHoldsConfig() HoldsConfig {
	return HoldsConfig{
		ReminderBefore:           24 * time.Hour,
		EscalateBefore:           4 * time.Hour,
		SchedulerTick:            time.Second,
		ReconcileEvery:           30 * time.Second,
		MaxDeliver:               5,
		RetryBackoff:             []time.Duration{time.Second, 5 * time.Second, 30 * time.Second},
		AckWait:                  30 * time.Second,
		DeadAfter:                time.Minute,
		FallbackDeadline:         72 * time.Hour,
		PatientFeedProcessingIDs: []string{"P"},
	}
}

// LoadHoldsConfig decodes the holds section of c strictly over the defaults
// and validates it.
func LoadHoldsConfig(c config.Config) (HoldsConfig, error) {
	hc := DefaultHoldsConfig()
	if err := c.Decode(config.SectionHolds, &hc); err != nil {
		return hc, err
	}
	return hc, hc.Validate()
}

// Validate names the key of the first problems found.
func (h HoldsConfig) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("holds.%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if h.ReminderBefore < 0 {
		bad("reminder_before", "must not be negative, got %s", h.ReminderBefore)
	}
	if h.EscalateBefore < 0 {
		bad("escalate_before", "must not be negative, got %s", h.EscalateBefore)
	}
	if h.SchedulerTick <= 0 {
		bad("scheduler_tick", "must be positive, got %s", h.SchedulerTick)
	}
	if h.ReconcileEvery <= 0 {
		bad("reconcile_every", "must be positive, got %s", h.ReconcileEvery)
	}
	if h.MaxDeliver < 1 {
		bad("max_deliver", "must be at least 1, got %d", h.MaxDeliver)
	}
	for i, d := range h.RetryBackoff {
		if d < 0 {
			bad(fmt.Sprintf("retry_backoff[%d]", i), "must not be negative, got %s", d)
		}
	}
	if h.AckWait < time.Second {
		bad("ack_wait", "must be at least 1s, got %s", h.AckWait)
	}
	if h.ProcessTimeout != 0 && (h.ProcessTimeout < 10*time.Millisecond || h.ProcessTimeout > h.AckWait/2) {
		bad("process_timeout", "must be 0 (the default) or between 10ms and half of holds.ack_wait (%s), got %s", h.AckWait/2, h.ProcessTimeout)
	}
	if h.DeadAfter < h.processTimeout() {
		bad("dead_after", "must be at least holds.process_timeout (%s), got %s", h.processTimeout(), h.DeadAfter)
	}
	if h.FallbackDeadline <= 0 {
		bad("fallback_deadline", "must be positive, got %s", h.FallbackDeadline)
	}
	for i, id := range h.PatientFeedProcessingIDs {
		if id != "P" && id != "T" && id != "D" {
			bad(fmt.Sprintf("patient_feed_processing_ids[%d]", i), "must be P (production), T (training) or D (debugging), got %q", id)
		}
	}
	return errors.Join(errs...)
}

// defaultProcessTimeout is the processing budget of one classify attempt
// when holds.process_timeout is not set: a message takes milliseconds, so
// seconds are a stuck or hostile one.
const defaultProcessTimeout = 5 * time.Second

// processTimeout returns the budget of one classify attempt.
func (h HoldsConfig) processTimeout() time.Duration {
	if h.ProcessTimeout > 0 {
		return h.ProcessTimeout
	}
	return min(defaultProcessTimeout, h.AckWait/2)
}

// backoff returns the delay after the n-th failed delivery (n >= 1).
func (h HoldsConfig) backoff(n int) time.Duration {
	if len(h.RetryBackoff) == 0 {
		return time.Second
	}
	if n < 1 {
		n = 1
	}
	if n > len(h.RetryBackoff) {
		n = len(h.RetryBackoff)
	}
	return h.RetryBackoff[n-1]
}

// Config configures the pipeline after intake.
type Config struct {
	Holds HoldsConfig
	// Partitions is the number of inbound partitions (as the intake uses).
	Partitions int
	// Secret keys every hash (hold IDs, patient, order and provider keys); the
	// intake's partition key.
	Secret []byte
	// Policy classifies and decides; required.
	Policy Policy
	// FHIR maps a release to the FHIR Bundle of the feed; nil publishes the
	// HL7 feed only.
	FHIR feed.FHIREncoder
	// Clock defaults to the system clock.
	Clock Clock
	// Replicas of the pipeline's own buckets (determinations, orders).
	Replicas int
	// NoClassify starts no classify consumers (tools and tests that only need
	// the Service, the scheduler and the reconciler).
	NoClassify bool
	// NoBackground starts neither the deadline scheduler nor the reconciler:
	// with NoClassify, only the Service (the hold view and the release gate),
	// for an instance that serves the API while others run the pipeline.
	NoBackground bool
	Logger       zerolog.Logger
}

// EnsureBuckets creates the buckets the pipeline owns besides those of
// EnsureStreams: determinations and the orders index.
func EnsureBuckets(ctx context.Context, js jetstream.JetStream, replicas int) error {
	if replicas <= 0 {
		replicas = 1
	}
	var errs []error
	for _, cfg := range []jetstream.KeyValueConfig{
		{Bucket: bus.KVDeterminations, Description: "Clinician determinations keyed by order key", History: 16, Storage: jetstream.FileStorage, Replicas: replicas},
		{Bucket: bus.KVOrders, Description: "Latest version of each order (for corrections)", History: 8, Storage: jetstream.FileStorage, Replicas: replicas},
	} {
		if _, err := js.CreateOrUpdateKeyValue(ctx, cfg); err != nil {
			errs = append(errs, fmt.Errorf("ensuring bucket %s: %w", cfg.Bucket, err))
		}
	}
	return errors.Join(errs...)
}

// Pipeline runs everything after the intake: the classify consumers, the hold
// view, the scheduler and the reconciler (the request/reply API, router/api,
// is started beside it by the caller). Start it
// after EnsureStreams; Stop it before draining the connection.
type Pipeline struct {
	cfg Config
	nc  *nats.Conn
	js  jetstream.JetStream
	svc *Service
	log zerolog.Logger

	mu        sync.Mutex
	started   bool
	stopOnce  sync.Once
	stopErr   error
	cancel    context.CancelFunc
	procStop  context.CancelFunc
	wg        sync.WaitGroup
	consumers []jetstream.ConsumeContext
	viewErr   chan error
}

// New builds a pipeline on connection nc.
func New(nc *nats.Conn, cfg Config) (*Pipeline, error) {
	if cfg.Policy == nil {
		return nil, errors.New("pipeline: no policy")
	}
	if len(cfg.Secret) == 0 {
		return nil, errors.New("pipeline: empty secret")
	}
	if cfg.Holds.SchedulerTick == 0 {
		cfg.Holds = DefaultHoldsConfig()
	}
	if err := cfg.Holds.Validate(); err != nil {
		return nil, fmt.Errorf("pipeline: %w", err)
	}
	if cfg.Clock == nil {
		cfg.Clock = SystemClock{}
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("pipeline: %w", err)
	}
	log := cfg.Logger.With().Str("component", "pipeline").Logger()
	return &Pipeline{cfg: cfg, nc: nc, js: js, log: log, viewErr: make(chan error, 1)}, nil
}

// Service returns the Go API (valid after Start).
func (p *Pipeline) Service() *Service { return p.svc }

// Start opens the buckets, loads the hold view (bounded by ctx), and starts
// the reconciler, the scheduler and one classify consumer per partition. On
// error everything started is stopped again.
func (p *Pipeline) Start(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.started {
		return nil
	}
	if err := EnsureBuckets(ctx, p.js, p.cfg.Replicas); err != nil {
		return fmt.Errorf("starting pipeline: %w", err)
	}
	kvs := map[string]jetstream.KeyValue{}
	for _, b := range []string{bus.KVHolds, bus.KVConsents, bus.KVPatients, bus.KVDeterminations, bus.KVOrders} {
		kv, err := p.js.KeyValue(ctx, b)
		if err != nil {
			return fmt.Errorf("starting pipeline: bucket %s (run EnsureStreams first): %w", b, err)
		}
		kvs[b] = kv
	}
	metrics := NewMetrics()
	s := &Service{
		cfg: p.cfg, log: p.log, clock: p.cfg.Clock, policy: p.cfg.Policy, js: p.js,
		holds: store.NewHolds(kvs[bus.KVHolds]), view: holdview.New(p.log),
		audit: audit.NewTrail(p.js, p.log), notifier: notify.New(p.js), dead: dead.New(p.js, metrics.dead),
		history: store.NewHistory(kvs[bus.KVPatients]), consents: store.NewConsents(kvs[bus.KVConsents]),
		dets: store.NewDeterminations(kvs[bus.KVDeterminations]), orders: store.NewOrders(kvs[bus.KVOrders]),
		metrics: metrics,
	}
	// The classify step reads two keys of the orders and determinations
	// buckets per message: in one request each; the hold and the Consent
	// with a direct get each, and the order index is written with a plain
	// publish (LastReader.one, KV.Put).
	lr := store.NewLastReader(p.nc)
	s.orders.ReadBatched(lr)
	s.dets.ReadBatched(lr)
	s.holds.ReadBatched(lr)
	s.consents.ReadBatched(lr)
	s.gate = feed.New(feed.Config{JS: p.js, Holds: s.holds, View: s.view, Audit: s.audit, FHIR: p.cfg.FHIR, History: s.history, FeedsPatients: p.cfg.Holds.feedsPatients, Log: p.log, Metrics: metrics})
	p.svc = s

	runCtx, cancel := context.WithCancel(context.Background())
	procCtx, procStop := context.WithCancel(context.Background())
	p.cancel, p.procStop = cancel, procStop
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		if err := s.view.Run(runCtx, kvs[bus.KVHolds]); err != nil {
			p.log.Error().Err(err).Msg("hold view stopped")
			p.viewErr <- err
		}
	}()
	select {
	case <-s.view.Ready():
	case err := <-p.viewErr:
		p.abort()
		return fmt.Errorf("starting pipeline: %w", err)
	case <-ctx.Done():
		p.abort()
		return fmt.Errorf("starting pipeline: loading holds: %w", ctx.Err())
	}
	records, open := s.view.Counts()
	p.log.Info().Int("holds", records).Int("open", open).Msg("hold view loaded")
	if records >= releaseMemoryAfter {
		// Loading streamed every hold record through the process once (about
		// 3 KB of JSON each, decoded and dropped, plus the server's delivery
		// buffers): return that transient memory to the OS now rather than
		// whenever the runtime's scavenger gets to it. In the background: the
		// forced collection and returning the pages cost ~0.4 s of CPU at
		// 100,000 holds, which readiness need not wait for.
		go debug.FreeOSMemory()
	}
	if !p.cfg.NoBackground {
		p.wg.Add(2)
		go func() {
			defer p.wg.Done()
			s.gate.RunReconciler(runCtx, p.cfg.Clock.NewTicker, p.cfg.Holds.ReconcileEvery)
		}()
		go func() { defer p.wg.Done(); s.runScheduler(runCtx, p.cfg.Holds.SchedulerTick) }()
	}

	for _, part := range hold.PartitionTokens(p.cfg.Partitions) {
		if p.cfg.NoClassify {
			break
		}
		cons, err := p.js.CreateOrUpdateConsumer(ctx, bus.StreamHL7In, classifyConsumerConfig(part, p.cfg.Holds.AckWait))
		if err != nil {
			p.abort()
			return fmt.Errorf("starting pipeline: consumer %s: %w", consumerName(part), err)
		}
		cc, err := cons.Consume(func(m jetstream.Msg) {
			mctx, done := context.WithTimeout(procCtx, p.cfg.Holds.AckWait)
			defer done()
			s.handleInbound(mctx, m)
		}, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			if !errors.Is(err, jetstream.ErrNoHeartbeat) {
				p.log.Debug().Err(err).Str("partition", part).Msg("classify consumer")
			}
		}))
		if err != nil {
			p.abort()
			return fmt.Errorf("starting pipeline: consuming %s: %w", consumerName(part), err)
		}
		p.consumers = append(p.consumers, cc)
	}
	p.started = true
	return nil
}

// abort tears down a partial start (called with p.mu held).
func (p *Pipeline) abort() {
	for _, cc := range p.consumers {
		cc.Stop()
	}
	p.consumers = nil
	if p.cancel != nil {
		p.cancel()
	}
	if p.procStop != nil {
		p.procStop()
	}
	p.wg.Wait()
}

// Stop stops the pipeline in order: the
// classify consumers stop pulling and finish the message in hand, then the
// scheduler, reconciler and view stop. It is idempotent and bounded by ctx:
// when ctx ends first, in-flight work is cancelled (it is redelivered later,
// with stable IDs) and ctx's error is returned.
func (p *Pipeline) Stop(ctx context.Context) error {
	p.stopOnce.Do(func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if !p.started {
			return
		}
		var errs []error
		for _, cc := range p.consumers {
			cc.Drain()
		}
		for _, cc := range p.consumers {
			select {
			case <-cc.Closed():
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil {
			p.procStop()
			errs = append(errs, fmt.Errorf("stopping classify consumers: %w", ctx.Err()))
		}
		p.cancel()
		done := make(chan struct{})
		go func() { p.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("stopping pipeline: %w", ctx.Err()))
		}
		p.procStop()
		p.started = false
		p.stopErr = errors.Join(errs...)
	})
	return p.stopErr
}

// releaseMemoryAfter is the number of hold records above which the pipeline
// returns the memory of loading them to the OS once they are loaded.
const releaseMemoryAfter = 10000
