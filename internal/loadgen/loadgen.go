// Package loadgen is resultgate's MLLP load generator (`resultgate bench`): it
// sends copies of template messages over several connections, gives every copy a
// unique MSH-10 so that duplicate detection hides no work, and reports throughput
// and ACK latency percentiles.
package loadgen

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/resultgate/resultgate/hl7"
	"github.com/resultgate/resultgate/hl7/mllp"
)

// Config describes one load run.
type Config struct {
	Addr       string
	Conns      int
	Count      int           // messages in total, spread over the connections
	Rate       float64       // messages per second in total; 0 means as fast as possible
	AckTimeout time.Duration // per message
	TLS        *tls.Config
	// RunID makes control IDs unique across runs; defaults to the start time.
	RunID string
}

// Result is what a run measured. Latencies are from the write of a frame to the
// read of its ACK.
type Result struct {
	Sent       int     `json:"sent"`
	Accepted   int     `json:"accepted"` // AA or CA
	Errors     int     `json:"errors"`   // AE or CE
	Rejected   int     `json:"rejected"` // AR or CR
	Failed     int     `json:"failed"`   // transport errors and ACK timeouts
	Seconds    float64 `json:"seconds"`
	MsgPerSec  float64 `json:"msg_per_sec"`
	P50Millis  float64 `json:"p50_ms"`
	P90Millis  float64 `json:"p90_ms"`
	P99Millis  float64 `json:"p99_ms"`
	MaxMillis  float64 `json:"max_ms"`
	Conns      int     `json:"conns"`
	TargetRate float64 `json:"target_rate,omitempty"`
}

// Run sends cfg.Count messages built from templates and waits for every ACK.
func Run(ctx context.Context, cfg Config, templates [][]byte) (Result, error) {
	if cfg.Conns < 1 || cfg.Count < 1 || len(templates) == 0 {
		return Result{}, errors.New("loadgen: need at least one connection, one message and one template")
	}
	if cfg.AckTimeout <= 0 {
		cfg.AckTimeout = 30 * time.Second
	}
	if cfg.RunID == "" {
		cfg.RunID = strconv.FormatInt(time.Now().UnixNano()%1e12, 36)
	}
	for i, t := range templates {
		if _, _, err := controlIDSpan(t); err != nil {
			return Result{}, fmt.Errorf("loadgen: template %d: %w", i+1, err)
		}
	}
	var interval time.Duration
	if cfg.Rate > 0 {
		interval = time.Duration(float64(time.Second) * float64(cfg.Conns) / cfg.Rate)
	}
	lat := make([]time.Duration, cfg.Count)
	var next atomic.Int64
	var accepted, errs, rejected, failed atomic.Int64
	var wg sync.WaitGroup
	var firstErr error
	var errOnce sync.Once
	start := time.Now()
	for c := 0; c < cfg.Conns; c++ {
		wg.Add(1)
		go func(conn int) {
			defer wg.Done()
			cl, err := mllp.Dial(ctx, mllp.ClientConfig{Addr: cfg.Addr, TLS: cfg.TLS, AckTimeout: cfg.AckTimeout, DialTimeout: 10 * time.Second})
			if err != nil {
				errOnce.Do(func() { firstErr = fmt.Errorf("loadgen: connecting to %s: %w", cfg.Addr, err) })
				return
			}
			defer cl.Close()
			tick := start.Add(time.Duration(conn) * interval / time.Duration(cfg.Conns))
			buf := make([]byte, 0, 4096)
			for {
				i := int(next.Add(1)) - 1
				if i >= cfg.Count || ctx.Err() != nil {
					return
				}
				if interval > 0 {
					if d := time.Until(tick); d > 0 {
						time.Sleep(d) // pacing the open-loop rate, not synchronisation
					}
					tick = tick.Add(interval)
				}
				buf = WithControlID(buf[:0], templates[i%len(templates)], cfg.RunID+"-"+strconv.Itoa(i))
				t0 := time.Now()
				ack, err := cl.Send(ctx, buf)
				lat[i] = time.Since(t0)
				if err != nil {
					failed.Add(1)
					continue
				}
				switch AckCode(ack) {
				case "AA", "CA":
					accepted.Add(1)
				case "AE", "CE":
					errs.Add(1)
				case "AR", "CR":
					rejected.Add(1)
				default:
					failed.Add(1)
				}
			}
		}(c)
	}
	wg.Wait()
	elapsed := time.Since(start)
	sent := int(accepted.Load() + errs.Load() + rejected.Load() + failed.Load())
	if sent == 0 && firstErr != nil {
		return Result{}, firstErr
	}
	done := lat[:min(sent, len(lat))]
	slices.Sort(done)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	pct := func(p float64) float64 {
		if len(done) == 0 {
			return 0
		}
		return ms(done[min(len(done)-1, int(p*float64(len(done))))])
	}
	res := Result{
		Sent: sent, Accepted: int(accepted.Load()), Errors: int(errs.Load()),
		Rejected: int(rejected.Load()), Failed: int(failed.Load()),
		Seconds: elapsed.Seconds(), MsgPerSec: float64(sent) / elapsed.Seconds(),
		P50Millis: pct(0.50), P90Millis: pct(0.90), P99Millis: pct(0.99),
		Conns: cfg.Conns, TargetRate: cfg.Rate,
	}
	if len(done) > 0 {
		res.MaxMillis = ms(done[len(done)-1])
	}
	return res, firstErr
}

// controlIDSpan returns the byte span of MSH-10 in msg.
func controlIDSpan(msg []byte) (start, end int, err error) {
	h, ok := hl7.PeekMSH(msg)
	if !ok {
		return 0, 0, errors.New("no usable MSH segment")
	}
	start, end, ok = h.FieldSpan(10)
	if !ok {
		return 0, 0, errors.New("MSH has fewer than 10 fields")
	}
	return start, end, nil
}

// WithControlID appends to dst a copy of msg whose MSH-10 is id.
func WithControlID(dst, msg []byte, id string) []byte {
	s, e, err := controlIDSpan(msg)
	if err != nil {
		return append(dst, msg...)
	}
	dst = append(dst, msg[:s]...)
	dst = append(dst, id...)
	return append(dst, msg[e:]...)
}

// WithProcessingID returns a copy of msg whose MSH-11 (processing ID) is id,
// or msg itself when it has no MSH-11 to rewrite.
func WithProcessingID(msg []byte, id string) []byte {
	h, ok := hl7.PeekMSH(msg)
	if !ok {
		return msg
	}
	s, e, ok := h.FieldSpan(11)
	if !ok {
		return msg
	}
	out := make([]byte, 0, len(msg)+len(id))
	out = append(out, msg[:s]...)
	out = append(out, id...)
	return append(out, msg[e:]...)
}

// AckCode returns MSA-1 of an ACK message as hl7.ReadACK reads it (trimmed,
// upper-cased), or "" when there is none.
func AckCode(ack []byte) string {
	a, _ := hl7.ReadACK(ack)
	return string(a.Code)
}
