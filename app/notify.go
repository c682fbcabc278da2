package app

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/resultgate/resultgate/router/hold"
	"github.com/resultgate/resultgate/router/holdview"
	"github.com/resultgate/resultgate/router/notify/deliver"
)

// startNotify binds the notification deliverer (its durable consumer and
// failures bucket) when notify.receivers lists any, and starts it. It runs
// before the pipeline starts, so that a consumer created for the first time
// (notify.start: new) sees every notification the pipeline publishes.
func (a *App) startNotify(ctx context.Context, loc *time.Location) error {
	nc := a.secs.Notify
	if !nc.Enabled() {
		return nil
	}
	d, err := deliver.New(ctx, a.js, nc, deliver.Options{Replicas: a.cfg.NATS.Replicas, Location: loc, Logger: a.log, Waiting: a.waitingHolds})
	if err != nil {
		return err
	}
	d.Start()
	a.notify = d
	return nil
}

// waitingHolds counts, from this instance's hold view, the held results a
// notification's audience has waiting: the clinician's (by ordering
// provider) or those escalated to on-call. Without a pipeline on this
// instance, or before its view is loaded, the count is left out.
func (a *App) waitingHolds(ctx context.Context, e deliver.Event) (deliver.Waiting, bool) {
	p := a.pipeline
	if p == nil {
		return deliver.Waiting{}, false
	}
	now := time.Now()
	if a.clock != nil {
		now = a.clock.Now()
	}
	f := holdview.Filter{State: hold.StateHeld}
	switch e.Role {
	case deliver.RoleClinician:
		if e.ProviderID == "" {
			return deliver.Waiting{}, false
		}
		f.Provider = e.ProviderID // the view's provider index: that clinician's holds only
	case deliver.RoleOnCall:
		// On-call's count reads every held result: after an outage the
		// escalations come by the thousand, so one count serves those sent
		// within onCallWaitingTTL of it.
		a.onCallWaiting.mu.Lock()
		defer a.onCallWaiting.mu.Unlock()
		if c := &a.onCallWaiting; !c.at.IsZero() && now.Sub(c.at) < onCallWaitingTTL && !now.Before(c.at) {
			return c.w, true
		}
	}
	holds, err := p.Service().ListHolds(ctx, f)
	if err != nil {
		return deliver.Waiting{}, false
	}
	var w deliver.Waiting
	for _, h := range holds {
		if e.Role == deliver.RoleOnCall && (h.EscalateAt.IsZero() || h.EscalateAt.After(now)) {
			continue
		}
		w.Count++
		if w.Earliest.IsZero() || h.Deadline.Before(w.Earliest) {
			w.Earliest = h.Deadline
		}
	}
	if e.Role == deliver.RoleOnCall {
		a.onCallWaiting.at, a.onCallWaiting.w = now, w
	}
	return w, true
}

// onCallWaitingTTL is how long one count of the results escalated to
// on-call serves the notifications sent after it.
const onCallWaitingTTL = 10 * time.Second

// waitingCount is the last count of the results escalated to on-call.
type waitingCount struct {
	mu sync.Mutex
	at time.Time
	w  deliver.Waiting
}

// registerNotifyMetrics exports the deliverer's counters: deliveries by
// receiver (its configured name) and outcome, unrouted and unreadable
// notifications, and those not yet settled.
func (a *App) registerNotifyMetrics() {
	if a.notify == nil {
		return
	}
	reg, d := a.registry, a.notify
	desc := prometheus.NewDesc("resultgate_notify_deliveries_total",
		"Notification delivery attempts by receiver and outcome (sent, retried, failed: parked after notify.max_attempts).",
		[]string{"receiver", "outcome"}, nil)
	reg.MustRegister(collectorFunc{desc: desc, collect: func(ch chan<- prometheus.Metric) {
		for name, outcomes := range d.Stats().Deliveries {
			for outcome, n := range outcomes {
				ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, float64(n), name, outcome)
			}
		}
	}})
	counterFunc(reg, "notify_unrouted_total", "Notifications no route matched (delivered to nobody).",
		func() float64 { return float64(d.Stats().Unrouted) })
	counterFunc(reg, "notify_unreadable_total", "Notifications that could not be decoded (parked).",
		func() float64 { return float64(d.Stats().Unreadable) })
	gaugeFunc(reg, "notify_pending", "Notifications not yet delivered to every receiver they are routed to (not yet tried, or waiting for a retry).", func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		n, err := d.Pending(ctx)
		if err != nil {
			return math.NaN() // unknown: NATS did not answer in time
		}
		return float64(n)
	})
}
