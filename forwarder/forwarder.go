// Package forwarder delivers the portal feed's HL7 to a downstream portal
// interface over MLLP (HL7 v2.x chapter 2 acknowledgements, MLLP release 1
// framing; see hl7/mllp).
//
// Each partition of the feed (portal.hl7.<partition> in the PORTAL stream) has
// a durable JetStream consumer with explicit acks and at most one message
// pending. A message is sent as released, every original byte in place (its
// MSH-10 is the original control ID), with the release instructions of its
// feed headers added as an NTE and a Z-segment (AddInstructions; off with
// Config.ReleaseInstructions false). The JetStream message is acknowledged
// only after the downstream answered AA or CA. Any other outcome leaves the
// message where it is: it is tried again after an exponential back-off, and
// the partition's next message waits behind it. Because the consumer state lives in JetStream, this order holds
// across restarts and across several resultgate instances sharing the work.
//
// Delivery is at least once: a crash after the downstream stored a message but
// before the JetStream ack sends it again, with the same MSH-10, for the
// downstream's duplicate check to absorb. A message the downstream rejects
// (AR/CR) every time is recorded in the DEAD stream (hl7.dead.forward) after
// Config.MaxAttemptsBeforeAlert attempts so that the rest of the partition can
// move on; see docs/FORWARDER.md.
package forwarder

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/resultgate/resultgate/hl7"
	"github.com/resultgate/resultgate/hl7/mllp"
	"github.com/resultgate/resultgate/router/bus"
)

// DeadReason is the dead-letter reason of messages the forwarder gives up on:
// they are published on bus.DeadSubject(DeadReason), "hl7.dead.forward".
const DeadReason = "forward"

// Headers the forwarder adds to its dead-letter records, beside router's
// Resultgate-Dead-* headers and the feed message's own headers.
const (
	// HeaderForwardAck is the last acknowledgement code (AR, CR, AE, ...) or
	// "none" when no ACK arrived.
	HeaderForwardAck = "Resultgate-Forward-Ack"
	// HeaderForwardAddr is the downstream address the message was sent to.
	HeaderForwardAddr = "Resultgate-Forward-Addr"
)

// ErrStopped is returned by Start after Stop.
var ErrStopped = errors.New("forwarder: stopped")

// ackWait is the consumers' AckWait: how long a message handed to an instance
// that died stays invisible before another instance gets it. While a message
// is being worked on the forwarder reports progress every ackWait/3, so a long
// ACK wait or a queue for the shared connection never lets it be redelivered
// to a second instance (which would send it twice and could reorder).
const ackWait = 30 * time.Second

// fetchWait is how long one pull request waits for a message. An orderly
// Stop waits for the outstanding requests to end rather than abandoning them:
// a message the server hands to an abandoned request would stay invisible for
// ackWait and hold up its partition. One second bounds that wait.
const fetchWait = time.Second

// stopGrace bounds the wait for a delivery once Stop has interrupted it.
const stopGrace = 2 * time.Second

// settleTimeout bounds acknowledging a delivered message to JetStream, also
// while stopping: an ack lost here means the downstream gets the message again.
const settleTimeout = 5 * time.Second

// Stats is a snapshot of the forwarder's counters, for metrics. The counters
// only grow, except Stuck.
type Stats struct {
	// Delivered counts messages the downstream accepted (AA/CA).
	Delivered uint64
	// Attempts counts sends that ended in an answer or a failure (not those
	// interrupted by Stop).
	Attempts uint64
	// Retries counts failed attempts that will be tried again.
	Retries uint64
	// AppErrors counts AE/CE answers.
	AppErrors uint64
	// Rejected counts AR/CR answers.
	Rejected uint64
	// Timeouts counts attempts without an ACK within ack_timeout.
	Timeouts uint64
	// ConnErrors counts attempts that failed to connect or lost the connection.
	ConnErrors uint64
	// BadAcks counts answers that were not a usable ACK for the message.
	BadAcks uint64
	// Dead counts messages recorded in the DEAD stream and skipped.
	Dead uint64
	// Alerts counts partitions going stuck: a message failing
	// max_attempts_before_alert times.
	Alerts uint64
	// Stuck is the number of partitions whose current message has failed at
	// least max_attempts_before_alert times (0 when all is well).
	Stuck int
	// LastError is when the last attempt failed; zero if none has.
	LastError time.Time
	// LastDelivered is when the downstream last accepted a message.
	LastDelivered time.Time
	// LastLatency is the send-to-ACK time of the last delivered message.
	LastLatency time.Duration
}

// Forwarder delivers the portal HL7 feed to one downstream MLLP receiver.
type Forwarder struct {
	js  jetstream.JetStream
	cfg Config
	log zerolog.Logger
	tls *tls.Config

	mu       sync.Mutex // guards the fields below
	started  bool
	stopped  bool
	stopCh   chan struct{} // closed by Stop: no new pull requests
	links    []*link
	stopOnce sync.Once
	stopErr  error

	wg         sync.WaitGroup
	sendCtx    context.Context // cancelled to interrupt deliveries on a forced stop
	cancelSend context.CancelFunc

	delivered, attempts, retries, appErrors, rejected atomic.Uint64
	timeouts, connErrors, badAcks, dead, alerts       atomic.Uint64
	lastError, lastDelivered, lastLatency             atomic.Int64

	stuckMu sync.Mutex
	stuck   map[string]bool
}

// New returns a Forwarder for cfg (zero fields take the defaults). It checks
// cfg and loads the TLS files but does no network I/O. A disabled cfg gives a
// Forwarder whose Start and Stop do nothing.
func New(js jetstream.JetStream, cfg Config, log zerolog.Logger) (*Forwarder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	f := &Forwarder{js: js, cfg: cfg, log: log.With().Str("component", "forwarder").Logger(), stuck: map[string]bool{}}
	if !cfg.Enabled {
		return f, nil
	}
	if js == nil {
		return nil, errors.New("forwarder: nil JetStream")
	}
	tc, err := cfg.tlsConfig()
	if err != nil {
		return nil, err
	}
	f.tls = tc
	f.log = f.log.With().Str("downstream", cfg.Addr).Logger()
	return f, nil
}

// Config returns the configuration in use, defaults filled in.
func (f *Forwarder) Config() Config { return f.cfg }

// ConsumerName returns the durable consumer of partition.
func (c Config) ConsumerName(partition string) string {
	prefix := c.ConsumerPrefix
	if prefix == "" {
		prefix = DefaultConsumerPrefix
	}
	return prefix + "-" + partition
}

// Start creates (or updates) the durable consumers and starts one delivery
// loop per partition. It returns once they run; delivery itself goes on in
// the background until Stop. A disabled Forwarder returns nil at once.
func (f *Forwarder) Start(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.cfg.Enabled {
		f.log.Info().Msg("MLLP forwarder disabled")
		return nil
	}
	if f.stopped {
		return ErrStopped
	}
	if f.started {
		return errors.New("forwarder: already started")
	}
	f.sendCtx, f.cancelSend = context.WithCancel(context.Background())
	f.stopCh = make(chan struct{})
	for range f.cfg.Connections {
		f.links = append(f.links, newLink(f.cfg.Addr, f.tls, f.cfg, f.log))
	}
	parts := f.cfg.partitions()
	for i, p := range parts {
		cons, err := f.ensureConsumer(ctx, p)
		if err != nil {
			f.abort()
			return err
		}
		l := f.links[i%len(f.links)]
		f.wg.Add(1)
		go f.run(p, cons, l)
	}
	f.started = true
	f.log.Info().Int("partitions", len(parts)).Int("connections", len(f.links)).
		Dur("ack_timeout", f.cfg.AckTimeout).Bool("tls", f.tls != nil).Msg("MLLP forwarder started")
	return nil
}

// abort tears down a partial start (called with f.mu held).
func (f *Forwarder) abort() {
	close(f.stopCh)
	f.cancelSend()
	f.wg.Wait()
	for _, l := range f.links {
		_ = l.close()
	}
	f.links = nil
}

// ensureConsumer creates the durable consumer of partition p, or updates it
// keeping its start position (immutable in JetStream).
func (f *Forwarder) ensureConsumer(ctx context.Context, p string) (jetstream.Consumer, error) {
	name := f.cfg.ConsumerName(p)
	cc := jetstream.ConsumerConfig{
		Durable:       name,
		Description:   "MLLP forwarder of portal partition " + p,
		FilterSubject: bus.SubjectPortalHL7Prefix + p,
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		// One message in flight per partition across every instance: the
		// next result of a patient is never sent before the previous one was
		// accepted (or dead-lettered).
		MaxAckPending: 1,
		AckWait:       ackWait,
		// The forwarder decides when to give up (and records it in DEAD);
		// the server never drops a message on its own.
		MaxDeliver: -1,
	}
	if f.cfg.Start == StartNew {
		cc.DeliverPolicy = jetstream.DeliverNewPolicy
	}
	existing, err := f.js.Consumer(ctx, bus.StreamPortal, name)
	switch {
	case err == nil:
		old := existing.CachedInfo().Config
		cc.DeliverPolicy, cc.OptStartSeq, cc.OptStartTime = old.DeliverPolicy, old.OptStartSeq, old.OptStartTime
	case !errors.Is(err, jetstream.ErrConsumerNotFound):
		return nil, fmt.Errorf("forwarder: looking up consumer %s: %w", name, err)
	}
	cons, err := f.js.CreateOrUpdateConsumer(ctx, bus.StreamPortal, cc)
	if err != nil {
		return nil, fmt.Errorf("forwarder: ensuring consumer %s: %w", name, err)
	}
	return cons, nil
}

// run delivers partition p's messages one at a time until Stop. Each pull
// asks for one message (the consumer has at most one pending anyway) and is
// left to end on its own, so no message is ever handed to a request nobody
// reads.
func (f *Forwarder) run(p string, cons jetstream.Consumer, l *link) {
	defer f.wg.Done()
	for {
		select {
		case <-f.stopCh:
			return
		default:
		}
		msg, err := cons.Next(jetstream.FetchMaxWait(fetchWait))
		switch {
		case err == nil:
			f.handle(p, l, msg)
		case errors.Is(err, nats.ErrTimeout):
		default:
			// NATS unreachable, consumer deleted, ...: log and try again.
			f.log.Warn().Err(err).Str("partition", p).Msg("forwarder could not pull from the feed; retrying")
			select {
			case <-f.stopCh:
				return
			case <-time.After(fetchWait):
			}
		}
	}
}

// withInstructions returns data with the release instructions of the feed
// message's headers h added (AddInstructions), or the reason they cannot be.
// The rewrite is deterministic, so every attempt sends the same bytes.
func (f *Forwarder) withInstructions(data []byte, h nats.Header, log zerolog.Logger) ([]byte, error) {
	in, err := InstructionsFromHeader(h)
	if err != nil {
		return nil, err
	}
	out, replaced, err := AddInstructions(data, in, f.cfg.ReleaseSegment)
	if err != nil {
		return nil, err
	}
	if replaced > 0 {
		log.Warn().Int("characters", replaced).
			Msg("release instructions carry characters the message's character set (MSH-18) cannot represent; sent as '?'")
	}
	return out, nil
}

// outcome classifies one attempt.
type outcome int

const (
	outDelivered  outcome = iota
	outAppError           // AE/CE
	outRejected           // AR/CR
	outTimeout            // no ACK in time
	outConn               // could not connect, or connection lost
	outBadAck             // answer is not a usable ACK for this message
	outUnsendable         // the bytes cannot be framed: never deliverable
	outUnreadable         // the release instructions cannot be added: never deliverable
)

func (o outcome) String() string {
	return [...]string{"delivered", "error", "rejected", "timeout", "connection", "bad-ack", "unsendable", "unreadable"}[o]
}

// handle makes one delivery attempt of msg and settles it.
func (f *Forwarder) handle(p string, l *link, msg jetstream.Msg) {
	meta, err := msg.Metadata()
	if err != nil {
		f.log.Error().Err(err).Str("partition", p).Msg("feed message without metadata; nak")
		_ = msg.Nak()
		return
	}
	attempt := int(meta.NumDelivered)
	h := msg.Headers()
	controlID := h.Get(bus.HeaderControlID)
	if controlID == "" {
		if m, err := hl7.Parse(msg.Data()); err == nil {
			controlID = m.ControlID()
		}
	}
	// The control ID and the downstream's MSA-1 are logged cut to hl7's
	// header bound: neither side may put kilobytes into a log line.
	log := f.log.With().Str("partition", p).Uint64("seq", meta.Sequence.Stream).
		Str("control_id", hl7.TruncateValue(controlID, hl7.MaxHeaderValue, 0)).Str("hold_id", h.Get(bus.HeaderHoldID)).Int("attempt", attempt).Logger()

	stopProgress := keepInProgress(msg)
	defer stopProgress()

	data := msg.Data()
	var instrErr error
	if f.cfg.InstructionsOn() {
		data, instrErr = f.withInstructions(data, h, log)
	}

	start := time.Now()
	var ackBytes []byte
	if instrErr == nil {
		ackBytes, err = l.send(f.sendCtx, data)
	}
	latency := time.Since(start)
	if f.sendCtx.Err() != nil || errors.Is(err, errLinkClosed) {
		// Stop interrupted the attempt: give the message back at once so
		// another instance (or this one after a restart) takes it over. The
		// downstream may have stored it; it then sees the same MSH-10 again.
		_ = msg.Nak()
		log.Info().Msg("delivery interrupted by stop; the message will be delivered again")
		return
	}
	f.attempts.Add(1)
	out, code := outUnreadable, hl7.AckCode("")
	if instrErr != nil {
		err = instrErr
	} else {
		out, code = f.evaluate(ackBytes, err, controlID)
	}
	ackStr := hl7.TruncateValue(string(code), maxLoggedAckCode, 0)
	if ackStr == "" {
		ackStr = "none"
	}

	if out == outDelivered {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(f.sendCtx), settleTimeout)
		aerr := msg.DoubleAck(sctx)
		cancel()
		f.delivered.Add(1)
		now := time.Now()
		f.lastDelivered.Store(now.UnixNano())
		f.lastLatency.Store(int64(latency))
		f.setStuck(p, false)
		ev := log.Debug()
		if attempt > 1 {
			ev = log.Info()
		}
		if aerr != nil {
			// The downstream has it; only our bookkeeping failed. It will be
			// redelivered and sent again with the same MSH-10.
			log.Warn().Err(aerr).Msg("delivered but the feed ack was not confirmed; the downstream may receive it twice")
		}
		ev.Str("ack", ackStr).Dur("latency", latency).Msg("result forwarded")
		return
	}

	f.lastError.Store(time.Now().UnixNano())
	switch out {
	case outAppError:
		f.appErrors.Add(1)
	case outRejected:
		f.rejected.Add(1)
	case outTimeout:
		f.timeouts.Add(1)
	case outConn:
		f.connErrors.Add(1)
	case outBadAck:
		f.badAcks.Add(1)
	}
	detail := safeErr(out, err)

	giveUp, why := false, ""
	switch {
	case out == outUnsendable:
		giveUp, why = true, "the message contains an MLLP framing byte and can never be sent"
	case out == outUnreadable:
		giveUp, why = true, "its release instructions cannot be added to the HL7 (forwarder.release_instructions): "+detail
	case out == outRejected && attempt >= f.cfg.MaxAttemptsBeforeAlert:
		giveUp, why = true, fmt.Sprintf("downstream rejected it (%s) on attempt %d of %d", code, attempt, f.cfg.MaxAttemptsBeforeAlert)
	case f.cfg.DeadAfter > 0 && attempt >= f.cfg.MaxAttemptsBeforeAlert && time.Since(meta.Timestamp) >= f.cfg.DeadAfter:
		giveUp, why = true, fmt.Sprintf("undeliverable for longer than dead_after %s (last: %s) after %d attempts", f.cfg.DeadAfter, out, attempt)
	}
	if giveUp {
		if derr := f.deadLetter(msg, meta, why, ackStr); derr != nil {
			delay := f.cfg.backoff(attempt)
			log.Error().Err(derr).Dur("retry_in", delay).Msg("dead-lettering a forwarded result failed; it stays in the feed and is tried again")
			_ = msg.NakWithDelay(delay)
			return
		}
		f.dead.Add(1)
		f.setStuck(p, false)
		log.Error().Str("ack", ackStr).Str("reason", why).Bool("alert", true).
			Msg("forwarder gave up on a released result: recorded in DEAD (hl7.dead.forward); the partition moves on")
		return
	}

	f.retries.Add(1)
	delay := f.cfg.backoff(attempt)
	if attempt >= f.cfg.MaxAttemptsBeforeAlert {
		if f.setStuck(p, true) {
			f.alerts.Add(1)
		}
		log.Error().Str("outcome", out.String()).Str("ack", ackStr).Str("error", detail).Dur("latency", latency).
			Dur("retry_in", delay).Bool("alert", true).Msg("forwarder stuck: downstream keeps failing this result; the partition waits")
	} else {
		log.Warn().Str("outcome", out.String()).Str("ack", ackStr).Str("error", detail).Dur("latency", latency).
			Dur("retry_in", delay).Msg("forwarding failed; retrying the same result")
	}
	if err := msg.NakWithDelay(delay); err != nil {
		// Not fatal: the message is redelivered after AckWait instead.
		log.Warn().Err(err).Msg("nak not sent; redelivery after the ack wait")
	}
}

// maxLoggedAckCode bounds the MSA-1 a log line quotes: a valid code has two
// characters, and a downstream answering kilobytes there gets only a hint.
const maxLoggedAckCode = 8

// evaluate classifies an attempt from the send error and the ACK.
func (f *Forwarder) evaluate(ack []byte, err error, controlID string) (outcome, hl7.AckCode) {
	switch {
	case errors.Is(err, mllp.ErrFramingByte):
		return outUnsendable, ""
	case errors.Is(err, mllp.ErrAckTimeout):
		return outTimeout, ""
	case errors.Is(err, mllp.ErrFrameTooLarge):
		return outBadAck, ""
	case err != nil:
		return outConn, ""
	}
	code, ackedID, aerr := readAck(ack)
	if aerr != nil {
		return outBadAck, code
	}
	if ackedID != "" && controlID != "" && ackedID != controlID {
		// An ACK for another message (a confused engine, a stale frame) is
		// no proof this one arrived.
		return outBadAck, code
	}
	switch {
	case code.Positive():
		return outDelivered, code
	case rejected(code):
		return outRejected, code
	default:
		return outAppError, code
	}
}

// safeErr describes a failed attempt without message content: mllp errors name
// the address and the cause only, and ACK content is never logged.
func safeErr(o outcome, err error) string {
	switch o {
	case outAppError:
		return "downstream answered AE/CE"
	case outRejected:
		return "downstream answered AR/CR"
	case outBadAck:
		return "answer is not a usable ACK for this message (MSA missing, unknown code, or MSA-2 names another message)"
	case outUnsendable:
		return mllp.ErrFramingByte.Error()
	}
	if err == nil {
		return ""
	}
	return err.Error()
}

// deadLetter records msg on hl7.dead.forward with the reason, the original
// headers and the DEAD stream's reference headers, then terminates it on the
// consumer. The Nats-Msg-Id is derived from the feed message's, so a crash
// between the two steps records it once.
func (f *Forwarder) deadLetter(msg jetstream.Msg, meta *jetstream.MsgMetadata, why, ack string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(f.sendCtx), settleTimeout)
	defer cancel()
	seq := strconv.FormatUint(meta.Sequence.Stream, 10)
	hdr := nats.Header{}
	for k, v := range msg.Headers() {
		if strings.HasPrefix(k, "Nats-") {
			continue
		}
		hdr[k] = v
	}
	msgID := msg.Headers().Get(jetstream.MsgIDHeader)
	hdr.Set(bus.HeaderDeadReason, DeadReason)
	hdr.Set(bus.HeaderDeadDetail, why)
	hdr.Set(bus.HeaderDeadSubject, msg.Subject())
	hdr.Set(bus.HeaderDeadSeq, seq)
	hdr.Set(bus.HeaderDeadMsgID, msgID)
	hdr.Set(bus.HeaderDeadDelivered, strconv.FormatUint(meta.NumDelivered, 10))
	hdr.Set(bus.HeaderDeadAt, time.Now().UTC().Format(time.RFC3339Nano))
	hdr.Set(HeaderForwardAck, ack)
	hdr.Set(HeaderForwardAddr, f.cfg.Addr)
	id := "forward-dead-" + msgID
	if msgID == "" {
		id = "forward-dead-seq-" + seq
	}
	subj := bus.DeadSubject(DeadReason)
	if _, err := f.js.PublishMsg(ctx, &nats.Msg{Subject: subj, Header: hdr, Data: msg.Data()},
		jetstream.WithMsgID(id), jetstream.WithExpectStream(bus.StreamDead)); err != nil {
		return fmt.Errorf("publishing %s: %w", subj, err)
	}
	if err := msg.TermWithReason("forward-" + DeadReason); err != nil {
		// Recorded in DEAD; a redelivery re-records it under the same ID.
		return fmt.Errorf("terminating feed seq %s: %w", seq, err)
	}
	return nil
}

// setStuck records whether partition p is stuck and reports whether it just
// became so.
func (f *Forwarder) setStuck(p string, stuck bool) bool {
	f.stuckMu.Lock()
	defer f.stuckMu.Unlock()
	was := f.stuck[p]
	if stuck {
		f.stuck[p] = true
	} else {
		delete(f.stuck, p)
	}
	return stuck && !was
}

// keepInProgress tells JetStream every ackWait/3 that msg is still being
// worked on, until the returned function is called.
func keepInProgress(msg jetstream.Msg) func() {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(ackWait / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				_ = msg.InProgress()
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// Stats returns a snapshot of the counters.
func (f *Forwarder) Stats() Stats {
	f.stuckMu.Lock()
	stuck := len(f.stuck)
	f.stuckMu.Unlock()
	ts := func(v *atomic.Int64) time.Time {
		if n := v.Load(); n != 0 {
			return time.Unix(0, n)
		}
		return time.Time{}
	}
	return Stats{
		Delivered: f.delivered.Load(), Attempts: f.attempts.Load(), Retries: f.retries.Load(),
		AppErrors: f.appErrors.Load(), Rejected: f.rejected.Load(), Timeouts: f.timeouts.Load(),
		ConnErrors: f.connErrors.Load(), BadAcks: f.badAcks.Load(), Dead: f.dead.Load(),
		Alerts: f.alerts.Load(), Stuck: stuck,
		LastError: ts(&f.lastError), LastDelivered: ts(&f.lastDelivered),
		LastLatency: time.Duration(f.lastLatency.Load()),
	}
}

// Stop stops the forwarder in order: the consumers stop pulling, the message
// in hand on each partition finishes its attempt (its ACK or its ack_timeout),
// and the connections close. It is idempotent and bounded by ctx: when ctx
// ends first, deliveries in progress are interrupted and their messages given
// back to JetStream unacknowledged (delivered again later, in order, with the
// same MSH-10), and Stop returns an error wrapping ctx's.
func (f *Forwarder) Stop(ctx context.Context) error {
	f.stopOnce.Do(func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.stopped = true
		if !f.started {
			return
		}
		var errs []error
		close(f.stopCh)
		done := make(chan struct{})
		go func() { f.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("stopping forwarder: deliveries in progress interrupted: %w", ctx.Err()))
			f.cancelSend()
			for _, l := range f.links {
				_ = l.close()
			}
			t := time.NewTimer(stopGrace)
			select {
			case <-done:
			case <-t.C:
				errs = append(errs, errors.New("stopping forwarder: a delivery did not end after its interruption"))
			}
			t.Stop()
		}
		f.cancelSend()
		for _, l := range f.links {
			if err := l.close(); err != nil {
				errs = append(errs, fmt.Errorf("closing downstream connection: %w", err))
			}
		}
		f.started = false
		f.stopErr = errors.Join(errs...)
		f.log.Info().Msg("MLLP forwarder stopped")
	})
	return f.stopErr
}
