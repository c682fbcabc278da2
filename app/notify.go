package app

import (
	"context"
	"math"
	"time"

	"github.com/prometheus/client_golang/prometheus"

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
	d, err := deliver.New(ctx, a.js, nc, deliver.Options{Replicas: a.cfg.NATS.Replicas, Location: loc, Logger: a.log})
	if err != nil {
		return err
	}
	d.Start()
	a.notify = d
	return nil
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
