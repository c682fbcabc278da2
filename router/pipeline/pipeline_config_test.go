package pipeline

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/resultgate/resultgate/config"
)

func TestLoadHoldsConfig(t *testing.T) {
	cases := []struct {
		name string
		yaml string
		want func(HoldsConfig) bool
		err  string
	}{
		{name: "defaults", yaml: "", want: func(h HoldsConfig) bool {
			return h.ReminderBefore == 24*time.Hour && h.MaxDeliver == 5 && h.SchedulerTick == time.Second &&
				h.processTimeout() == 5*time.Second && h.DeadAfter == time.Minute
		}},
		{name: "process timeout follows a short ack wait", yaml: "holds:\n  ack_wait: 2s\n", want: func(h HoldsConfig) bool {
			return h.processTimeout() == time.Second
		}},
		{name: "processing bounds", yaml: "holds:\n  process_timeout: 2s\n  dead_after: 30s\n", want: func(h HoldsConfig) bool {
			return h.processTimeout() == 2*time.Second && h.DeadAfter == 30*time.Second
		}},
		{name: "process timeout over half the ack wait", yaml: "holds:\n  process_timeout: 20s\n",
			err: "holds.process_timeout: must be 0 (the default) or between 10ms and half of holds.ack_wait (15s), got 20s"},
		{name: "dead after under the process timeout", yaml: "holds:\n  process_timeout: 10s\n  dead_after: 5s\n",
			err: "holds.dead_after: must be at least holds.process_timeout (10s), got 5s"},
		{name: "values", yaml: "holds:\n  reminder_before: 12h\n  escalate_before: 1h\n  covering:\n    DRSMITH: [DRJONES]\n  max_deliver: 3\n", want: func(h HoldsConfig) bool {
			return h.ReminderBefore == 12*time.Hour && h.EscalateBefore == time.Hour && h.Covering["DRSMITH"][0] == "DRJONES" && h.MaxDeliver == 3
		}},
		// config.Section numbers lines within the section, hence only the tail.
		{name: "unknown key", yaml: "holds:\n  remind_before: 12h\n", err: "line 2: holds.remind_before: unknown key (did you mean holds.reminder_before?)"},
		{name: "invalid values", yaml: "holds:\n  max_deliver: 0\n  scheduler_tick: 0s\n  reminder_before: -1h\n",
			err: "holds.reminder_before: must not be negative, got -1h0m0s\nholds.scheduler_tick: must be positive, got 0s\nholds.max_deliver: must be at least 1, got 0"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := config.Parse([]byte(c.yaml))
			if err != nil {
				t.Fatal(err)
			}
			h, err := LoadHoldsConfig(cfg)
			if c.err != "" {
				if err == nil || !strings.HasSuffix(err.Error(), c.err) {
					t.Fatalf("err = %v\nwant %s", err, c.err)
				}
				return
			}
			if err != nil || !c.want(h) {
				t.Fatalf("config = %+v, %v", h, err)
			}
		})
	}
}

func TestNewPipelineRefusesMissingParts(t *testing.T) {
	if _, err := New(nil, Config{Secret: []byte("s")}); err == nil || !strings.Contains(err.Error(), "no policy") {
		t.Fatalf("err = %v", err)
	}
	if _, err := New(nil, Config{Policy: &testPolicy{}}); err == nil || !strings.Contains(err.Error(), "empty secret") {
		t.Fatalf("err = %v", err)
	}
	hc := DefaultHoldsConfig()
	hc.AckWait = time.Millisecond
	_, err := New(nil, Config{Policy: &testPolicy{}, Secret: []byte("s"), Holds: hc})
	if err == nil || errors.Unwrap(err) == nil || !strings.Contains(err.Error(), "holds.ack_wait: must be at least 1s, got 1ms") {
		t.Fatalf("err = %v", err)
	}
}
