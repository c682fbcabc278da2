package deliver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/resultgate/resultgate/router/bus"
)

// Outcomes of one delivery to one receiver, the values of the outcome
// label of resultgate_notify_deliveries_total.
const (
	// OutcomeSent: the receiver accepted the notification.
	OutcomeSent = "sent"
	// OutcomeRetried: the attempt failed and will be tried again.
	OutcomeRetried = "retried"
	// OutcomeFailed: the last allowed attempt failed; the notification is
	// parked in the notify_failures bucket.
	OutcomeFailed = "failed"
)

// fetchWait bounds one pull: how long Stop may wait for an idle worker.
const fetchWait = time.Second

// Options are what the deliverer takes from the rest of the instance.
type Options struct {
	// Replicas is the replica count of the notify_failures bucket.
	Replicas int
	// Location is the time zone deadlines are shown in (the policy's).
	Location *time.Location
	// Now is the clock (signing timestamps, mail dates); nil is time.Now.
	Now    func() time.Time
	Logger zerolog.Logger
	// Details looks up the PHI of a notification for receivers with
	// include_phi; nil reads it from the holds bucket and HL7_IN
	// (StoreDetails).
	Details func(ctx context.Context, e Event) (*PHI, error)
	// Waiting counts the held results waiting for the notification's
	// audience at the time of sending (Waiting in the template data); nil,
	// or ok false, leaves it out.
	Waiting func(ctx context.Context, e Event) (w Waiting, ok bool)
}

// Waiting is how many held results wait for a notification's audience: for
// a clinician, the held results they ordered; for on-call, the held results
// escalated to on-call and not yet released. Earliest is the soonest
// deadline among them.
type Waiting struct {
	Count    int
	Earliest time.Time
}

type receiver struct {
	name       string
	typ        string
	includePHI bool
	s          sender
}

// Deliverer delivers the notifications of the NOTIFY stream to the
// configured receivers. It is driven by one durable consumer shared by
// every instance, runs its own workers, and is never waited on by the
// pipeline: a receiver that is down delays only its notifications.
type Deliverer struct {
	cfg       Config
	opts      Options
	js        jetstream.JetStream
	log       zerolog.Logger
	receivers map[string]receiver
	failures  jetstream.KeyValue
	sent      jetstream.KeyValue // receivers that accepted a notification being retried
	sources   []*source

	ctx    context.Context // cancelled when Stop's bound ends
	cancel context.CancelFunc
	stopCh chan struct{}
	wg     sync.WaitGroup
	once   sync.Once

	mu sync.Mutex
	// delivered remembers, per notification, the receivers that already
	// accepted it while it is retried for others, so that a retry goes only
	// to those that failed. A partial success is also written to the
	// notify_sent bucket (persisted), which a retry in another process (after
	// a restart, or on another instance) reads.
	delivered map[delivery]map[string]bool
	// persisted marks the notifications with an entry in notify_sent.
	persisted map[delivery]bool
	counts    map[[2]string]uint64
	unrouted  uint64
	invalid   uint64
}

// New builds the receivers of cfg (reading secret files, parsing
// templates) and binds the durable consumer and the failures bucket.
// Start runs it.
func New(ctx context.Context, js jetstream.JetStream, cfg Config, opts Options) (*Deliverer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Location == nil {
		opts.Location = time.Local
	}
	d := &Deliverer{
		cfg: cfg, opts: opts, js: js, log: opts.Logger.With().Str("component", "notify").Logger(),
		receivers: map[string]receiver{}, stopCh: make(chan struct{}),
		delivered: map[delivery]map[string]bool{}, persisted: map[delivery]bool{}, counts: map[[2]string]uint64{},
	}
	if d.opts.Details == nil {
		d.opts.Details = StoreDetails(js)
	}
	longest := time.Duration(0)
	for i, r := range cfg.Receivers {
		var s sender
		var err error
		var timeout time.Duration
		switch r.Type {
		case TypeWebhook:
			s, err = newWebhook(*r.Webhook, opts.Now)
			timeout = r.Webhook.Timeout
		case TypeEmail:
			s, err = newEmail(*r.Email, opts.Now)
			timeout = r.Email.Timeout
		}
		if err != nil {
			return nil, fmt.Errorf("notify.receivers[%d].%s: %w", i, r.Type, err)
		}
		if timeout == 0 {
			timeout = DefaultTimeout
		}
		longest = max(longest, timeout)
		d.receivers[r.Name] = receiver{name: r.Name, typ: r.Type, includePHI: r.IncludePHI, s: s}
	}
	replicas := max(opts.Replicas, 1)
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: bus.KVNotifyFailures, Description: "Notifications not delivered after notify.max_attempts",
		Storage: jetstream.FileStorage, Replicas: replicas, History: 1,
	})
	if err != nil {
		return nil, fmt.Errorf("notify: ensuring bucket %s: %w", bus.KVNotifyFailures, err)
	}
	d.failures = kv
	if d.sent, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: bus.KVNotifySent, Description: "Receivers that accepted a notification still retried for others",
		Storage: jetstream.FileStorage, Replicas: replicas, History: 1, TTL: bus.NotifySentMaxAge,
	}); err != nil {
		// A NATS user whose permissions predate the bucket may not create
		// or update it: use it as it is, or deliver without it (as before
		// it existed: a receiver may then get a notification twice after a
		// restart, with the same idempotency key).
		if d.sent, err = js.KeyValue(ctx, bus.KVNotifySent); err != nil {
			d.sent = nil
			d.log.Warn().Err(err).Str("bucket", bus.KVNotifySent).Msg("notify_sent unavailable (grant $KV.notify_sent.> and its stream, docs/OPERATIONS.md); partial deliveries are remembered by this process only")
		}
	}
	for _, src := range sources(cfg) {
		if src.cons, err = d.ensureConsumer(ctx, src, longest); err != nil {
			return nil, err
		}
		d.sources = append(d.sources, src)
	}
	return d, nil
}

// ensureConsumer creates the durable consumer of src, or updates it keeping
// its start position (immutable in JetStream).
func (d *Deliverer) ensureConsumer(ctx context.Context, src *source, longest time.Duration) (jetstream.Consumer, error) {
	cc := jetstream.ConsumerConfig{
		Durable:       src.durable,
		Description:   src.description,
		FilterSubject: src.filter,
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverNewPolicy,
		// One attempt runs every matched receiver at once, each bounded by
		// its timeout, plus the PHI look-up: the server redelivers only
		// once an attempt can no longer be running.
		AckWait: 2*longest + 30*time.Second,
		// The deliverer decides when to give up (and parks the notification
		// in notify_failures); the server never drops one on its own.
		MaxDeliver: -1,
		// Notifications waiting out a back-off count here: with a receiver
		// down for hours, the rest wait in the stream, not in memory.
		MaxAckPending: 1000,
	}
	if d.cfg.Start == StartAll {
		cc.DeliverPolicy = jetstream.DeliverAllPolicy
	}
	existing, err := d.js.Consumer(ctx, src.stream, cc.Durable)
	switch {
	case err == nil:
		old := existing.CachedInfo().Config
		cc.DeliverPolicy, cc.OptStartSeq, cc.OptStartTime = old.DeliverPolicy, old.OptStartSeq, old.OptStartTime
	case !errors.Is(err, jetstream.ErrConsumerNotFound):
		return nil, fmt.Errorf("notify: looking up consumer %s: %w", cc.Durable, err)
	}
	cons, err := d.js.CreateOrUpdateConsumer(ctx, src.stream, cc)
	if err != nil {
		return nil, fmt.Errorf("notify: ensuring consumer %s: %w", cc.Durable, err)
	}
	return cons, nil
}

// Start runs the workers until Stop.
func (d *Deliverer) Start() {
	d.ctx, d.cancel = context.WithCancel(context.Background())
	for _, src := range d.sources {
		for range src.workers {
			d.wg.Add(1)
			go d.run(src)
		}
	}
	d.log.Info().Int("receivers", len(d.receivers)).Int("routes", len(d.cfg.Routes)).Str("consumer", d.cfg.Consumer).Msg("notification delivery started")
}

// Stop lets the workers finish the notification in hand and returns; if
// ctx ends first, attempts in flight are cancelled (their notifications
// are redelivered, to this or another instance). It is idempotent.
func (d *Deliverer) Stop(ctx context.Context) error {
	var err error
	d.once.Do(func() {
		close(d.stopCh)
		done := make(chan struct{})
		go func() { d.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			if d.cancel != nil {
				d.cancel()
			}
			<-done
			err = fmt.Errorf("notify: stopping: %w", ctx.Err())
		}
		if d.cancel != nil {
			d.cancel()
		}
	})
	return err
}

func (d *Deliverer) run(src *source) {
	defer d.wg.Done()
	for {
		select {
		case <-d.stopCh:
			return
		default:
		}
		msg, err := src.cons.Next(jetstream.FetchMaxWait(fetchWait))
		switch {
		case err == nil:
			d.handle(src, msg)
		case errors.Is(err, nats.ErrTimeout):
		default:
			d.log.Warn().Err(err).Str("stream", src.stream).Msg("could not pull notifications; retrying")
			select {
			case <-d.stopCh:
				return
			case <-time.After(fetchWait):
			}
		}
	}
}

// route returns the names of the receivers e goes to, in route order.
func (d *Deliverer) route(e Event) []string {
	var out []string
	for _, r := range d.cfg.Routes {
		if !r.Match.matches(e) {
			continue
		}
		for _, name := range r.Receivers {
			if !slices.Contains(out, name) {
				out = append(out, name)
			}
		}
		if !r.Continue {
			break
		}
	}
	return out
}

func (m Match) matches(e Event) bool {
	in := func(list []string, v string) bool { return len(list) == 0 || slices.Contains(list, v) }
	if !in(m.Kinds, e.Kind) || !in(m.Roles, e.Role) || !in(m.ProviderIDs, e.ProviderID) {
		return false
	}
	if len(m.Tags) == 0 {
		return true
	}
	for _, t := range e.Tags {
		if slices.Contains(m.Tags, t) {
			return true
		}
	}
	return false
}

// handle makes one delivery attempt of msg to every matched receiver that
// does not have it yet, and settles it: ack when all have it, nak with the
// back-off when some failed, park and term once the attempts are used up.
func (d *Deliverer) handle(src *source, msg jetstream.Msg) {
	meta, err := msg.Metadata()
	if err != nil {
		d.log.Error().Err(err).Msg("notification without metadata; nak")
		_ = msg.Nak()
		return
	}
	seq, attempt := meta.Sequence.Stream, int(meta.NumDelivered)
	log := d.log.With().Str("stream", src.stream).Uint64("seq", seq).Int("attempt", attempt).Logger()
	e, ok, err := src.decode(msg, seq)
	if err == nil && !ok {
		_ = msg.Ack() // not a notification (an audit event of another action)
		return
	}
	key := delivery{src.stream, seq}
	if err != nil {
		// Nothing can deliver it; keep a record so it is not lost silently.
		d.mu.Lock()
		d.invalid++
		d.mu.Unlock()
		log.Error().Err(err).Msg("notification cannot be read; parked")
		if perr := d.park(e, key, "-", attempt, err); perr != nil {
			log.Error().Err(perr).Msg("parking failed; nak")
			_ = msg.NakWithDelay(d.cfg.backoff(attempt))
			return
		}
		_ = msg.Term()
		return
	}
	log = log.With().Str("kind", e.Kind).Str("hold_id", e.HoldID).Logger()
	targets := d.route(e)
	if len(targets) == 0 {
		d.mu.Lock()
		d.unrouted++
		d.mu.Unlock()
		log.Debug().Msg("no route matches the notification")
		_ = msg.Ack()
		return
	}
	if attempt > 1 {
		d.loadSent(key, log)
	}
	d.mu.Lock()
	have := d.delivered[key]
	var pending []receiver
	for _, name := range targets {
		if !have[name] {
			pending = append(pending, d.receivers[name])
		}
	}
	d.mu.Unlock()

	errs := make([]error, len(pending))
	var wg sync.WaitGroup
	for i, r := range pending {
		wg.Go(func() { errs[i] = d.attempt(d.ctx, r, e, attempt) })
	}
	wg.Wait()

	var failed []int
	d.mu.Lock()
	for i, r := range pending {
		if errs[i] == nil {
			if d.delivered[key] == nil {
				d.delivered[key] = map[string]bool{}
			}
			d.delivered[key][r.name] = true
			d.counts[[2]string{r.name, OutcomeSent}]++
		} else {
			failed = append(failed, i)
		}
	}
	d.mu.Unlock()
	if len(failed) > 0 && attempt < d.cfg.MaxAttempts {
		d.saveSent(key, log)
	}
	if len(failed) == 0 {
		if err := msg.Ack(); err != nil {
			log.Warn().Err(err).Msg("ack not confirmed; the notification may be delivered again with the same idempotency key")
		}
		d.forget(key)
		return
	}
	final := attempt >= d.cfg.MaxAttempts
	for _, i := range failed {
		r := pending[i]
		ev := log.Warn()
		outcome := OutcomeRetried
		if final {
			ev, outcome = log.Error(), OutcomeFailed
			if err := d.park(e, key, r.name, attempt, errs[i]); err != nil {
				log.Error().Err(err).Str("receiver", r.name).Msg("parking failed; nak")
				_ = msg.NakWithDelay(d.cfg.backoff(attempt))
				return
			}
		}
		d.mu.Lock()
		d.counts[[2]string{r.name, outcome}]++
		d.mu.Unlock()
		ev.Err(errs[i]).Str("receiver", r.name).Str("outcome", outcome).Msg("notification not delivered")
	}
	if final {
		_ = msg.Term()
		d.forget(key)
		return
	}
	_ = msg.NakWithDelay(d.cfg.backoff(attempt))
}

func (d *Deliverer) forget(key delivery) {
	d.mu.Lock()
	delete(d.delivered, key)
	persisted := d.persisted[key]
	delete(d.persisted, key)
	d.mu.Unlock()
	if persisted {
		// Settled: its entry is no longer needed (it would expire anyway).
		if err := d.sent.Delete(d.ctx, sentKey(key)); err != nil {
			d.log.Debug().Err(err).Str("stream", key.stream).Uint64("seq", key.seq).Msg("notify_sent entry not deleted; it expires")
		}
	}
}

// sentKey is the notify_sent key of a notification.
func sentKey(key delivery) string { return key.stream + "." + strconv.FormatUint(key.seq, 10) }

// loadSent adds the receivers notify_sent records for key (written by an
// earlier attempt, possibly in another process) to what this process
// remembers. A failed read leaves it as it is: the receivers may then get
// the notification again, with the same idempotency key.
func (d *Deliverer) loadSent(key delivery, log zerolog.Logger) {
	d.mu.Lock()
	known := d.delivered[key] != nil
	d.mu.Unlock()
	if d.sent == nil || known {
		// This process tried it before and wrote what it knows: nothing to
		// read on each of its retries.
		return
	}
	e, err := d.sent.Get(d.ctx, sentKey(key))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return
	}
	if err != nil {
		log.Warn().Err(err).Msg("reading notify_sent failed; receivers that accepted the notification may get it again")
		return
	}
	var names []string
	if err := json.Unmarshal(e.Value(), &names); err != nil {
		log.Warn().Err(err).Msg("notify_sent entry unreadable; ignored")
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.delivered[key] == nil {
		d.delivered[key] = map[string]bool{}
	}
	for _, n := range names {
		d.delivered[key][n] = true
	}
	d.persisted[key] = true
}

// saveSent writes the receivers that accepted key so far to notify_sent. A
// failed write is logged: this process still remembers them.
func (d *Deliverer) saveSent(key delivery, log zerolog.Logger) {
	d.mu.Lock()
	names := make([]string, 0, len(d.delivered[key]))
	for n := range d.delivered[key] {
		names = append(names, n)
	}
	d.mu.Unlock()
	if len(names) == 0 || d.sent == nil {
		return
	}
	slices.Sort(names)
	data, err := json.Marshal(names)
	if err != nil {
		return
	}
	if _, err := d.sent.Put(d.ctx, sentKey(key), data); err != nil {
		log.Warn().Err(err).Msg("writing notify_sent failed; another instance taking over the retries may send the notification again")
		return
	}
	d.mu.Lock()
	d.persisted[key] = true
	d.mu.Unlock()
}

// attempt delivers e to r once.
func (d *Deliverer) attempt(ctx context.Context, r receiver, e Event, attempt int) error {
	data := newData(e, r.name, d.link(e.HoldID), d.opts.Location)
	if d.opts.Waiting != nil && (e.Kind == bus.NotifyHoldCreated || e.Kind == bus.NotifyReminder || e.Kind == bus.NotifyEscalation) {
		if w, ok := d.opts.Waiting(ctx, e); ok {
			data.setWaiting(w, d.opts.Location)
		}
	}
	if r.includePHI {
		phi, err := d.opts.Details(ctx, e)
		if err != nil {
			return fmt.Errorf("looking up the patient details (include_phi): %w", err)
		}
		data.PHI = phi
	}
	return r.s.send(ctx, data, attempt)
}

// link is the web page's address for a notification: the hold's own page
// (#hold=<opaque hold ID>, which the page opens after sign-in) when the
// notification is about one hold, else the worklist. The hold ID is a keyed
// hash, not PHI.
func (d *Deliverer) link(holdID string) string {
	if d.cfg.PublicURL == "" {
		return ""
	}
	u := d.cfg.PublicURL
	if u[len(u)-1] != '/' {
		u += "/"
	}
	if holdID != "" {
		u += "#hold=" + url.QueryEscape(holdID)
	}
	return u
}

// Failure is a notification the deliverer gave up on for one receiver,
// kept in the notify_failures bucket. It carries no PHI.
type Failure struct {
	// Stream and Seq name the notification: NOTIFY, or DEAD for a
	// dead-letter notice, or AUDIT for a refused release.
	Stream   string    `json:"stream"`
	Seq      uint64    `json:"seq"`
	MsgID    string    `json:"msg_id"`
	Receiver string    `json:"receiver"`
	Kind     string    `json:"kind"`
	Role     string    `json:"role"`
	HoldID   string    `json:"hold_id,omitempty"`
	DeadSeq  uint64    `json:"dead_seq,omitempty"`
	Attempts int       `json:"attempts"`
	Error    string    `json:"error"`
	At       time.Time `json:"at"`
}

// failureKey is <stream>-<seq>-<receiver>, zero-padded so that keys sort
// by sequence.
func failureKey(key delivery, receiver string) string {
	if receiver == "-" {
		receiver = "unreadable"
	}
	return fmt.Sprintf("%s-%012d-%s", key.stream, key.seq, receiver)
}

func (d *Deliverer) park(e Event, key delivery, receiver string, attempts int, cause error) error {
	f := Failure{Stream: key.stream, Seq: key.seq, MsgID: e.MsgID, Receiver: receiver, Kind: e.Kind, Role: e.Role, HoldID: e.HoldID,
		DeadSeq: e.DeadSeq, Attempts: attempts, Error: cause.Error(), At: d.opts.Now().UTC()}
	data, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("encoding failure record: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := d.failures.Put(ctx, failureKey(key, receiver), data); err != nil {
		return fmt.Errorf("recording failure: %w", err)
	}
	return nil
}

// Failures lists the parked notifications, oldest first, from the
// notify_failures bucket (of any instance).
func Failures(ctx context.Context, js jetstream.JetStream) ([]Failure, error) {
	kv, err := js.KeyValue(ctx, bus.KVNotifyFailures)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", bus.KVNotifyFailures, err)
	}
	keys, err := kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", bus.KVNotifyFailures, err)
	}
	var names []string
	for k := range keys.Keys() {
		names = append(names, k)
	}
	slices.Sort(names)
	out := make([]Failure, 0, len(names))
	for _, k := range names {
		e, err := kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s %s: %w", bus.KVNotifyFailures, k, err)
		}
		var f Failure
		if err := json.Unmarshal(e.Value(), &f); err != nil {
			return nil, fmt.Errorf("decoding %s %s: %w", bus.KVNotifyFailures, k, err)
		}
		out = append(out, f)
	}
	return out, nil
}

// Stats are the deliverer's counters since start.
type Stats struct {
	// Deliveries counts attempts by receiver name and outcome.
	Deliveries map[string]map[string]uint64
	// Unrouted counts notifications no route matched.
	Unrouted uint64
	// Unreadable counts notifications that could not be decoded (parked).
	Unreadable uint64
}

// Stats returns a snapshot of the counters.
func (d *Deliverer) Stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := Stats{Deliveries: map[string]map[string]uint64{}, Unrouted: d.unrouted, Unreadable: d.invalid}
	for name := range d.receivers {
		s.Deliveries[name] = map[string]uint64{OutcomeSent: 0, OutcomeRetried: 0, OutcomeFailed: 0}
	}
	for k, n := range d.counts {
		s.Deliveries[k[0]][k[1]] = n
	}
	return s
}

// Pending returns how many notifications the consumer has not settled:
// those not yet tried and those waiting for a retry.
func (d *Deliverer) Pending(ctx context.Context) (uint64, error) {
	var n uint64
	for _, src := range d.sources {
		info, err := src.cons.Info(ctx)
		if err != nil {
			return 0, fmt.Errorf("consumer %s info: %w", src.durable, err)
		}
		n += info.NumPending + uint64(info.NumAckPending)
	}
	return n, nil
}

// String formats a failure for a terminal: one line, no PHI.
func (f Failure) String() string {
	id := f.HoldID
	if id == "" && f.DeadSeq > 0 {
		id = "dead " + strconv.FormatUint(f.DeadSeq, 10)
	}
	return fmt.Sprintf("%s %d\t%s\t%s\t%s\t%s\t%d\t%s", f.Stream, f.Seq, f.At.Format(time.RFC3339), f.Receiver, f.Kind, id, f.Attempts, f.Error)
}
