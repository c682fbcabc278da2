package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/resultgate/resultgate/router/feed"

	"github.com/resultgate/resultgate/router/notify"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/resultgate/resultgate/config"
	"github.com/resultgate/resultgate/hl7"
	"github.com/resultgate/resultgate/internal/testutil"
	"github.com/resultgate/resultgate/policy"
	"github.com/resultgate/resultgate/router/bus"
	"github.com/resultgate/resultgate/router/hold"
)

// newFakeClock is the settable clock of the deadline tests, stopped at a
// fixed instant. Its tickers (the scheduler's and the reconciler's) fire only
// on Advance or Tick, so a test decides exactly when a pass runs.
func newFakeClock() *testutil.FakeClock {
	return testutil.NewFakeClock(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
}

// testPolicy is a small, explicit rule set over the real policy types, so the
// pipeline tests say exactly which decision they exercise:
//   - OBR-24 "SP" tags pathology; OBX-5 containing "carcinoma" tags malignancy;
//   - a Consent with "hold": true holds pathology on a patient-request basis
//     (72 h, a clinician's review ends it); "fixed": true makes it elapse-only;
//   - a clinician determination holds on a clinician-determination basis (14 d);
//   - OBX-11 D or W withdraws; OBR-25 C after a released version is released
//     as a correction, after a held one replaces it (keeping the deadline).
type testPolicy struct {
	// failReport makes Report fail (a policy that cannot read the message).
	failReport atomic.Bool
	// stall, when set by stallOn, makes Classify wait for its channel to
	// close on messages whose control ID starts with stallPrefix, without
	// looking at any context: CPU-bound work, as far as the classify step can
	// tell. Classify runs after the step's reads and right before its writes.
	stallMu     sync.Mutex
	stallPrefix string
	stall       chan struct{}
	// stalled counts the Classify calls that waited on stall.
	stalled atomic.Int32
}

// stallOn makes Classify stall on control IDs starting with prefix until the
// returned function is called (also at the end of the test).
func (p *testPolicy) stallOn(t testing.TB, prefix string) (release func()) {
	ch := make(chan struct{})
	p.stallMu.Lock()
	p.stallPrefix, p.stall = prefix, ch
	p.stallMu.Unlock()
	var once sync.Once
	release = func() { once.Do(func() { close(ch) }) }
	t.Cleanup(release)
	return release
}

func (p *testPolicy) Report(m *hl7.Message) (*policy.Report, error) {
	if p.failReport.Load() {
		return nil, errors.New("test policy refuses the report")
	}

	r := &policy.Report{ControlID: m.ControlID()}
	if pid := m.First("PID"); pid != nil {
		r.PatientID = pid.Field(3).Rep(1).Raw()
	}
	for i, obr := range m.All("OBR") {
		o := policy.Order{
			PlacerID: obr.Field(2).Component(1), FillerID: obr.Field(3).Component(1),
			OrderingProvider: obr.Field(16).Component(1), ServiceSection: obr.Field(24).Value(),
			ResultStatus: obr.Field(25).Value(), Loc: policy.Location{Segment: "OBR", Occurrence: i + 1},
		}
		r.Orders = append(r.Orders, o)
	}
	for _, obx := range m.All("OBX") {
		if len(r.Orders) == 0 {
			break
		}
		last := &r.Orders[len(r.Orders)-1]
		last.Observations = append(last.Observations, policy.Observation{
			ValueType: obx.Field(2).Value(), Status: obx.Field(11).Value(),
			Texts: []policy.Text{{Value: obx.Field(5).Value()}},
		})
	}
	return r, nil
}

func (p *testPolicy) Classify(r *policy.Report, h policy.History) policy.Classification {
	p.stallMu.Lock()
	prefix, stall := p.stallPrefix, p.stall
	p.stallMu.Unlock()
	if stall != nil && strings.HasPrefix(r.ControlID, prefix) {
		p.stalled.Add(1)
		<-stall
	}
	c := policy.Classification{RulesetVersion: "test-1"}
	for _, o := range r.Orders {
		if o.ServiceSection == "SP" && !c.Has(policy.TagPathology) {
			c.Tags = append(c.Tags, policy.Tag{Tag: policy.TagPathology, Evidence: []policy.Evidence{{Segment: "OBR", Field: "OBR-24", Rule: "test.sp", Match: "SP"}}})
		}
		for _, x := range o.Observations {
			for _, t := range x.Texts {
				if strings.Contains(t.Value, "carcinoma") && !c.Has(policy.TagMalignancy) {
					c.Tags = append(c.Tags, policy.Tag{Tag: policy.TagMalignancy, Evidence: []policy.Evidence{{Segment: "OBX", Field: "OBX-5", Rule: "test.carcinoma", Match: "carcinoma"}}})
					if h == nil || !h.PriorMalignancy(r.PatientID) {
						c.Tags = append(c.Tags, policy.Tag{Tag: policy.TagNewCancer})
					}
				}
			}
		}
	}
	return c
}

// testConsent is the test policy's Consent format.
type testConsent struct {
	Patient string `json:"patient"`
	Status  string `json:"status"`
	Hold    bool   `json:"hold"`
	Fixed   bool   `json:"fixed"`
}

func (p *testPolicy) ParseConsent(data []byte) (*policy.Preference, error) {
	var c testConsent
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, err
	}
	if c.Status != "active" && c.Status != "inactive" {
		return nil, fmt.Errorf("status %q", c.Status)
	}
	pref := &policy.Preference{PatientIdentifier: c.Patient, Status: c.Status}
	if c.Hold {
		until := policy.UntilClinicianReview
		if c.Fixed {
			until = policy.UntilElapsed
		}
		pref.Provisions = []policy.Provision{{Until: until}}
	}
	return pref, nil
}

func (p *testPolicy) Decide(in policy.Input) policy.Decision {
	d := policy.Decision{RulesetVersion: "test-1", Notify: policy.NotifyPush, Disposition: policy.DispositionNew}
	correction := false
	for _, o := range in.Report.Orders {
		if o.ResultStatus == "C" {
			correction = true
		}
		for _, x := range o.Observations {
			if x.Status == "D" || x.Status == "W" {
				d.Action, d.Disposition = policy.ActionWithdraw, policy.DispositionWithdraw
				return d
			}
		}
	}
	if in.Classification.Has(policy.TagPathology) {
		d.Notify, d.Note = policy.NotifyQuiet, "Your clinician will discuss this result with you."
		if pr := in.Preference; pr != nil && !pr.Revoked() && len(pr.Provisions) > 0 {
			b := policy.Basis{Kind: policy.BasisPatientRequest, Until: pr.Provisions[0].Until, Deadline: in.Now.Add(72 * time.Hour), ReviewEnds: pr.Provisions[0].Until == policy.UntilClinicianReview}
			d.Bases = append(d.Bases, b)
		}
	}
	for range in.Determinations {
		d.Bases = append(d.Bases, policy.Basis{Kind: policy.BasisClinicianDetermination, Until: policy.UntilClinicianRelease, Deadline: in.Now.Add(14 * 24 * time.Hour), ReviewEnds: true})
		break
	}
	if correction && in.Prior != nil && in.Prior.State == policy.PriorReleased {
		d.Action, d.Disposition, d.Bases = policy.ActionRelease, policy.DispositionReleaseCorrection, nil
		return d
	}
	if len(d.Bases) == 0 {
		d.Action = policy.ActionRelease
		return d
	}
	d.Action = policy.ActionHold
	for _, b := range d.Bases {
		if b.Deadline.After(d.Deadline) {
			d.Deadline = b.Deadline
		}
	}
	if in.Prior != nil && in.Prior.State == policy.PriorHeld {
		d.Disposition, d.Deadline = policy.DispositionReplaceHeld, in.Prior.Deadline
	}
	return d
}

const testPartitions = 4

var pipeSecret = []byte("test-secret-0123456789")

// pipeEnv is one NATS server with the streams and a pipeline (or several).
type pipeEnv struct {
	t      testing.TB
	js     *testutil.JS
	clock  *testutil.FakeClock
	policy *testPolicy
	cfg    Config

	seqMu   sync.Mutex
	lastSeq map[string]uint64 // partition -> last inbound sequence sent
}

// noteSeq records that seq was stored on partition part.
func (e *pipeEnv) noteSeq(part string, seq uint64) {
	e.seqMu.Lock()
	defer e.seqMu.Unlock()
	if e.lastSeq == nil {
		e.lastSeq = map[string]uint64{}
	}
	e.lastSeq[part] = max(e.lastSeq[part], seq)
}

func newPipeEnv(t testing.TB, mod ...func(*Config)) *pipeEnv {
	t.Helper()
	return newPipeEnvOn(t, testutil.StartJS(t, config.DurabilityOS), mod...)
}

// newPipeEnvOn is newPipeEnv on the server and connection js (its streams
// ensured).
func newPipeEnvOn(t testing.TB, js *testutil.JS, mod ...func(*Config)) *pipeEnv {
	t.Helper()
	e := &pipeEnv{t: t, js: js, clock: newFakeClock(), policy: &testPolicy{}}
	hc := DefaultHoldsConfig()
	hc.SchedulerTick = 5 * time.Millisecond
	hc.ReconcileEvery = 50 * time.Millisecond
	hc.RetryBackoff = []time.Duration{10 * time.Millisecond}
	hc.MaxDeliver = 3
	hc.Covering = map[string][]string{"DRSMITH": {"DRJONES"}}
	e.cfg = Config{
		Holds: hc, Partitions: testPartitions, Secret: pipeSecret, Policy: e.policy, FHIR: feed.NewFHIREncoder(time.UTC, "", true),
		Clock: e.clock, Logger: zerolog.Nop(),
	}
	for _, m := range mod {
		m(&e.cfg)
	}
	return e
}

// start starts a new pipeline instance and stops it when the test ends.
func (e *pipeEnv) start() *Pipeline {
	e.t.Helper()
	p, err := New(e.js.NC, e.cfg)
	if err != nil {
		e.t.Fatalf("New: %v", err)
	}
	if err := p.Start(testutil.Ctx(e.t)); err != nil {
		e.t.Fatalf("Start: %v", err)
	}
	e.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := p.Stop(ctx); err != nil {
			e.t.Errorf("Stop: %v", err)
		}
	})
	return p
}

// msgSpec describes a test ORU^R01.
type msgSpec struct {
	ctrl     string
	pid      string
	filler   string
	section  string // OBR-24
	status   string // OBR-25
	obxStat  string // OBX-11
	text     string // OBX-5
	provider string // OBR-16.1
	procID   string // MSH-11; default P
	issuer   string // OBR-3.2 (the filler number's namespace)
	facility string // MSH-4 (default HOSP)
}

func (m msgSpec) build() []byte {
	if m.pid == "" {
		m.pid = "MRN1"
	}
	if m.status == "" {
		m.status = "F"
	}
	if m.obxStat == "" {
		m.obxStat = m.status
	}
	if m.provider == "" {
		m.provider = "DRSMITH"
	}
	if m.text == "" {
		m.text = "benign"
	}
	if m.procID == "" {
		m.procID = "P"
	}
	obr := make([]string, 26)
	obr[0], obr[1], obr[2], obr[3] = "OBR", "1", "PL-"+m.filler, m.filler
	if m.issuer != "" {
		obr[3] += "^" + m.issuer
	}
	if m.facility == "" {
		m.facility = "HOSP"
	}
	obr[4] = "88305^Surgical pathology^LN"
	obr[7] = "20260301120000"
	obr[16] = m.provider + "^Smith^Ann"
	obr[22] = "20260302080000"
	obr[24], obr[25] = m.section, m.status
	segs := []string{
		"MSH|^~\\&|LIS|" + m.facility + "|PORTAL|HOSP|20260302080000||ORU^R01^ORU_R01|" + m.ctrl + "|" + m.procID + "|2.5.1",
		"PID|1||" + m.pid + "^^^HOSP^MR||Doe^Jane",
		strings.Join(obr, "|"),
		"OBX|1|TX|22634-0^Pathology report^LN||" + m.text + "||||||" + m.obxStat,
	}
	return []byte(strings.Join(segs, "\r") + "\r")
}

// send publishes m to its partition as the intake would, and returns the
// inbound sequence.
func (e *pipeEnv) send(m msgSpec) uint64 {
	e.t.Helper()
	raw := m.build()
	pid := m.pid
	if pid == "" {
		pid = "MRN1"
	}
	part := hold.Partition(hold.PatientKey(pipeSecret, hold.PatientIdentity(pid, "HOSP")), testPartitions)
	msg := &nats.Msg{Subject: bus.InSubject(part), Header: nats.Header{}, Data: raw}
	msg.Header.Set(bus.HeaderReceivedAt, e.clock.Now().UTC().Format(time.RFC3339Nano))
	msg.Header.Set(bus.HeaderHL7ControlID, m.ctrl) // as the intake stores it
	ack, err := e.js.JS.PublishMsg(testutil.Ctx(e.t), msg, jetstream.WithMsgID("LIS|HOSP|"+m.ctrl))
	if err != nil {
		e.t.Fatalf("publishing inbound: %v", err)
	}
	e.noteSeq(part, ack.Sequence)
	return ack.Sequence
}

// sendRaw publishes arbitrary bytes to partition p00.
func (e *pipeEnv) sendRaw(id string, raw []byte) uint64 {
	e.t.Helper()
	ack, err := e.js.JS.PublishMsg(testutil.Ctx(e.t), &nats.Msg{Subject: bus.InSubject("p00"), Data: raw}, jetstream.WithMsgID(id))
	if err != nil {
		e.t.Fatalf("publishing inbound: %v", err)
	}
	e.noteSeq("p00", ack.Sequence)
	return ack.Sequence
}

// settled reports whether every classify consumer has acked (or
// dead-lettered) everything sent: nothing pending or unacknowledged, and the
// last sequence sent delivered (NumPending may not count a message stored an
// instant ago yet).
func (e *pipeEnv) settled() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	e.seqMu.Lock()
	last := maps.Clone(e.lastSeq)
	e.seqMu.Unlock()
	for _, part := range hold.PartitionTokens(testPartitions) {
		c, err := e.js.JS.Consumer(ctx, bus.StreamHL7In, consumerName(part))
		if err != nil {
			return false
		}
		info, err := c.Info(ctx)
		if err != nil || info.NumPending != 0 || info.NumAckPending != 0 || info.Delivered.Stream < last[part] {
			return false
		}
	}
	return true
}

// waitSettled waits until the classify step has processed every inbound message.
func (e *pipeEnv) waitSettled() {
	e.t.Helper()
	testutil.Eventually(e.t, 30*time.Second, "classify consumers settled", e.settled)
}

// portal returns the portal feed messages on subjects matching filter
// ("portal.hl7.>" or "portal.fhir.>").
func (e *pipeEnv) portal(filter string) []*nats.Msg {
	e.t.Helper()
	stream := bus.StreamPortal
	if strings.HasPrefix(filter, "test.") {
		stream = bus.StreamPortalTest
	}
	msgs, err := bus.ReadAll(testutil.Ctx(e.t), e.js.JS, stream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}}, 10000,
		func(m jetstream.Msg, _ uint64) (*nats.Msg, error) {
			return &nats.Msg{Subject: m.Subject(), Header: m.Headers(), Data: m.Data()}, nil
		})
	if err != nil {
		e.t.Fatalf("reading portal: %v", err)
	}
	return msgs
}

// notifications returns NOTIFY messages on filter.
func (e *pipeEnv) notifications(filter string) []notify.Notification {
	e.t.Helper()
	out, err := bus.ReadAll(testutil.Ctx(e.t), e.js.JS, bus.StreamNotify, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}}, 10000,
		func(m jetstream.Msg, _ uint64) (notify.Notification, error) {
			var n notify.Notification
			return n, json.Unmarshal(m.Data(), &n)
		})
	if err != nil {
		e.t.Fatalf("reading notifications: %v", err)
	}
	return out
}

// consent stores a test Consent through the service.
func (e *pipeEnv) consent(s *Service, pid, status string, hold, fixed bool) ConsentResult {
	e.t.Helper()
	body, _ := json.Marshal(testConsent{Patient: pid, Status: status, Hold: hold, Fixed: fixed})
	res, err := s.PutConsent(testutil.Ctx(e.t), ConsentPut{Consent: body, By: "patient-portal"})
	if err != nil {
		e.t.Fatalf("PutConsent: %v", err)
	}
	return res
}

// holdOf returns the hold ID of the inbound message with control ID ctrl.
func holdOf(ctrl string) string { return hold.HoldID(pipeSecret, "LIS|HOSP|"+ctrl) }

// waitState waits until hold id is in state st (read from the bucket).
func (e *pipeEnv) waitState(s *Service, id string, st hold.HoldState) *hold.Hold {
	e.t.Helper()
	var h *hold.Hold
	testutil.Eventually(e.t, 10*time.Second, fmt.Sprintf("hold %s %s", id, st), func() bool {
		var err error
		h, err = s.GetHold(testutil.Ctx(e.t), id)
		return err == nil && h.State == st
	})
	return h
}
