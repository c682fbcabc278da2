package app

import (
	"context"
	"time"

	"github.com/resultgate/resultgate/router/pipeline"

	"github.com/resultgate/resultgate/router/holdview"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/resultgate/resultgate/forwarder"
	"github.com/resultgate/resultgate/hl7/mllp"
	"github.com/resultgate/resultgate/router/hold"
	"github.com/resultgate/resultgate/router/intake"
)

// storeLatency registers the histogram of intake store (PubAck) latency and
// returns its observer.
func (a *App) storeLatency() func(time.Duration) {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "resultgate", Name: "intake_store_seconds",
		Help:    "Time from a complete MLLP frame to JetStream's PubAck.",
		Buckets: []float64{.0005, .001, .002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	})
	a.registry.MustRegister(h)
	return func(d time.Duration) { h.Observe(d.Seconds()) }
}

// registerMetrics exports the MLLP server's and the intake's counters. Labels
// carry reasons only, never identifiers or content.
func (a *App) registerMetrics() {
	reg := a.registry
	ms := func(f func(s mllp.Stats) uint64) func() float64 {
		return func() float64 { return float64(f(a.mllpSrv.Stats())) }
	}
	counterFunc(reg, "mllp_connections_accepted_total", "MLLP connections accepted.", ms(func(s mllp.Stats) uint64 { return s.ConnsAccepted }))
	rejected := prometheus.NewDesc("resultgate_mllp_connections_rejected_total",
		"MLLP connections refused or evicted by the listener's admission control, by reason: limit (max_conns reached, every connection busy), "+
			"per_peer (max_conns_per_peer reached, every connection of the peer busy), not_allowed (peer outside allowed_networks), "+
			"evicted_idle (an idle connection closed to admit a new one).", []string{"reason"}, nil)
	reg.MustRegister(collectorFunc{desc: rejected, collect: func(ch chan<- prometheus.Metric) {
		st := a.mllpSrv.Stats()
		for _, r := range []struct {
			reason string
			n      uint64
		}{{"limit", st.ConnsRejectedLimit}, {"per_peer", st.ConnsRejectedPerPeer}, {"not_allowed", st.ConnsRejectedNetwork}, {"evicted_idle", st.ConnsEvictedIdle}} {
			ch <- prometheus.MustNewConstMetric(rejected, prometheus.CounterValue, float64(r.n), r.reason)
		}
	}})
	counterFunc(reg, "mllp_tls_handshake_errors_total", "Failed MLLP TLS handshakes.", ms(func(s mllp.Stats) uint64 { return s.TLSHandshakeErrors }))
	counterFunc(reg, "mllp_frames_total", "MLLP frames received.", ms(func(s mllp.Stats) uint64 { return s.Frames }))
	counterFunc(reg, "mllp_bytes_skipped_total", "Bytes outside MLLP frames.", ms(func(s mllp.Stats) uint64 { return s.BytesSkipped }))
	counterFunc(reg, "mllp_oversize_frames_total", "MLLP frames over max_frame_bytes.", ms(func(s mllp.Stats) uint64 { return s.OversizeFrames }))
	counterFunc(reg, "mllp_read_timeouts_total", "MLLP connections closed because a frame did not finish in time.", ms(func(s mllp.Stats) uint64 { return s.ReadTimeouts }))
	counterFunc(reg, "mllp_idle_timeouts_total", "MLLP connections closed after the idle timeout.", ms(func(s mllp.Stats) uint64 { return s.IdleTimeouts }))
	counterFunc(reg, "mllp_write_errors_total", "ACKs that could not be written.", ms(func(s mllp.Stats) uint64 { return s.WriteErrors }))
	gaugeFunc(reg, "mllp_active_connections", "MLLP connections being served.", func() float64 { return float64(a.mllpSrv.ActiveConns()) })

	is := func(f func(s intake.Stats) uint64) func() float64 {
		return func() float64 { return float64(f(a.intake.Stats())) }
	}
	counterFunc(reg, "intake_received_total", "Messages handed to the intake.", is(func(s intake.Stats) uint64 { return s.Received }))
	counterFunc(reg, "intake_acked_total", "Messages stored and positively acknowledged.", is(func(s intake.Stats) uint64 { return s.Acked }))
	counterFunc(reg, "intake_duplicates_total", "Resent messages recognised as already stored.", is(func(s intake.Stats) uint64 { return s.Duplicates }))
	counterFunc(reg, "intake_dead_lettered_total", "Rejected messages recorded in the DEAD stream.", is(func(s intake.Stats) uint64 { return s.DeadLettered }))
	nacked := prometheus.NewDesc("resultgate_intake_nacked_total", "Negative acknowledgements by reason.", []string{"reason"}, nil)
	reg.MustRegister(collectorFunc{desc: nacked, collect: func(ch chan<- prometheus.Metric) {
		for r, n := range a.intake.Stats().Nacked {
			ch <- prometheus.MustNewConstMetric(nacked, prometheus.CounterValue, float64(n), string(r))
		}
	}})
}

// collectorFunc is a prometheus.Collector built from a description and a function.
type collectorFunc struct {
	desc    *prometheus.Desc
	collect func(chan<- prometheus.Metric)
}

func (c collectorFunc) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }
func (c collectorFunc) Collect(ch chan<- prometheus.Metric) { c.collect(ch) }

// registerPipelineMetrics exports the routing pipeline's counters: classify
// outcomes, decisions by action, releases by path, dead letters by reason, and
// the number of open holds. Labels are actions, paths and reasons only.
func (a *App) registerPipelineMetrics() {
	reg := a.registry
	svc := a.pipeline.Service()
	labelled := func(name, help, label string, pick func(pipeline.MetricsSnapshot) map[string]uint64) {
		desc := prometheus.NewDesc("resultgate_"+name, help, []string{label}, nil)
		reg.MustRegister(collectorFunc{desc: desc, collect: func(ch chan<- prometheus.Metric) {
			for k, v := range pick(svc.Metrics()) {
				ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, float64(v), k)
			}
		}})
	}
	labelled("classify_processed_total", "Inbound messages processed by the classify step, by outcome.", "outcome",
		func(s pipeline.MetricsSnapshot) map[string]uint64 { return s.Processed })
	labelled("decisions_total", "Policy decisions by action.", "action",
		func(s pipeline.MetricsSnapshot) map[string]uint64 { return s.Decisions })
	labelled("releases_total", "Results published to the portal feed, by release path.", "path",
		func(s pipeline.MetricsSnapshot) map[string]uint64 { return s.Releases })
	labelled("dead_letters_total", "Messages moved to the DEAD stream by the pipeline, and released results that cannot be published (reason unpublishable), by reason.", "reason",
		func(s pipeline.MetricsSnapshot) map[string]uint64 { return s.Dead })
	counterFunc(reg, "classify_retries_total", "Transient classify failures that were retried.",
		func() float64 { return float64(svc.Metrics().Retries) })
	counterFunc(reg, "classify_timeouts_total", "Classify attempts abandoned at holds.process_timeout (each counts as a failed delivery).",
		func() float64 { return float64(svc.Metrics().Timeouts) })
	gaugeFunc(reg, "classify_abandoned_attempts", "Abandoned classify attempts whose computation has not returned yet (they can no longer write).",
		func() float64 { return float64(svc.Metrics().Abandoned) })
	counterFunc(reg, "reconcile_rounds_total", "Rounds of the reconciler (released results not yet on the feed are published).",
		func() float64 { return float64(svc.Metrics().ReconcileRounds) })
	counterFunc(reg, "audit_append_retries_total", "Audit trail appends that failed once and were retried.",
		func() float64 { return float64(svc.Metrics().AuditRetries) })
	counterFunc(reg, "audit_append_conflicts_total", "Audit trail appends that lost the race for the chain head to another instance and were linked again.",
		func() float64 { return float64(svc.Metrics().AuditConflicts) })
	gaugeFunc(reg, "holds_open", "Holds currently holding a result (this instance's view).", func() float64 {
		hs, _ := svc.ListHolds(context.Background(), holdview.Filter{State: hold.StateHeld})
		return float64(len(hs))
	})
}

// registerForwarderMetrics exports the outbound forwarder's counters.
func (a *App) registerForwarderMetrics() {
	if a.fwd == nil {
		return
	}
	reg, f := a.registry, a.fwd
	c := func(name, help string, pick func(forwarder.Stats) uint64) {
		counterFunc(reg, name, help, func() float64 { return float64(pick(f.Stats())) })
	}
	c("forwarder_delivered_total", "Portal messages the downstream accepted (AA/CA).", func(s forwarder.Stats) uint64 { return s.Delivered })
	c("forwarder_retries_total", "Failed deliveries that will be tried again.", func(s forwarder.Stats) uint64 { return s.Retries })
	c("forwarder_rejected_total", "AR/CR answers from the downstream.", func(s forwarder.Stats) uint64 { return s.Rejected })
	c("forwarder_timeouts_total", "Deliveries without an ACK in time.", func(s forwarder.Stats) uint64 { return s.Timeouts })
	c("forwarder_dead_total", "Messages the forwarder moved to the DEAD stream.", func(s forwarder.Stats) uint64 { return s.Dead })
	c("forwarder_alerts_total", "Partitions that got stuck on one message.", func(s forwarder.Stats) uint64 { return s.Alerts })
	gaugeFunc(reg, "forwarder_stuck_partitions", "Partitions whose current message keeps failing.", func() float64 { return float64(f.Stats().Stuck) })
}
