package pipeline

import (
	"context"
	"errors"
	"time"

	"github.com/resultgate/resultgate/policy"
	"github.com/resultgate/resultgate/router/holdview"

	"github.com/resultgate/resultgate/router/store"

	"github.com/resultgate/resultgate/router/bus"
	"github.com/resultgate/resultgate/router/hold"
)

// Clock tells the time and paces the periodic work (the scheduler's ticks,
// the reconciler's rounds). The pipeline reads it for decisions and deadlines;
// tests inject a fake one whose time and ticks move only when the test says.
type Clock interface {
	Now() time.Time
	// NewTicker returns a channel that delivers ticks every d and a function
	// that stops them.
	NewTicker(d time.Duration) (<-chan time.Time, func())
}

// SystemClock is the wall clock.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// NewTicker returns a time.Ticker's channel and Stop.
func (SystemClock) NewTicker(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTicker(d)
	return t.C, t.Stop
}

// errNotDue means a deadline entry fired for a hold whose current deadline is
// later; the view reschedules it when it sees the record.
var errNotDue = errors.New("deadline not reached")

// scheduleRetry is how long a failed scheduled action waits before the next
// attempt (NATS unavailable, say).
const scheduleRetry = 5 * time.Second

// runScheduler fires due deadlines, reminders and escalations every tick until
// ctx ends. It only looks at the view's min-heap, so a tick costs the number of
// due entries, not the number of holds. Every instance runs it; the
// compare-and-set release and the notification Msg-Ids make each action
// happen once. Deadlines that passed while no instance ran are due at the
// first tick after the view is loaded.
func (s *Service) runScheduler(ctx context.Context, tick time.Duration) {
	ticks, stop := s.clock.NewTicker(tick)
	defer stop()
	for {
		s.fireDue(ctx)
		select {
		case <-ctx.Done():
			return
		case <-ticks:
		case <-s.view.TimersAdded():
		}
	}
}

// fireDue handles every entry due now.
func (s *Service) fireDue(ctx context.Context) {
	now := s.clock.Now().UTC()
	for _, e := range s.view.Due(now) {
		if ctx.Err() != nil {
			return
		}
		if err := s.fire(ctx, e, now); err != nil {
			s.log.Warn().Err(err).Str("hold_id", e.ID).Str("timer", e.Kind.String()).Msg("scheduled action failed; will retry")
			s.view.Retry(e, now.Add(scheduleRetry))
		}
	}
}

func (s *Service) fire(ctx context.Context, e holdview.Timer, now time.Time) error {
	switch e.Kind {
	case holdview.TimerDeadline:
		// The view's record is slim: the bases' own terms are read from the
		// bucket (a deadline fires once per hold).
		full, err := s.holds.Get(ctx, e.ID)
		if err != nil {
			if errors.Is(err, hold.ErrHoldNotFound) {
				return nil
			}
			return err
		}
		path, reason := deadlinePath(full)
		_, err = s.gate.Release(ctx, e.ID, hold.ReleaseInfo{
			Path: path, Actor: "resultgate", Role: hold.RoleSystem, Reason: reason, At: now,
		}, func(h *hold.Hold) error {
			// The view may lag a re-evaluation that moved the deadline: the
			// record read inside the compare-and-set decides.
			if now.Before(h.Deadline) {
				return errNotDue
			}
			return nil
		})
		if errors.Is(err, hold.ErrAlreadyReleased) || errors.Is(err, hold.ErrHoldClosed) || errors.Is(err, hold.ErrHoldNotFound) || errors.Is(err, errNotDue) {
			return nil
		}
		if err == nil {
			s.log.Info().Str("hold_id", e.ID).Msg("hold released at its deadline")
		}
		return err
	case holdview.TimerRemind, holdview.TimerEscalate:
		// The view's slim record has what the notification needs (provider,
		// deadline, tag names, basis kinds); the compare-and-set below reads
		// the stored record and decides. Not reading the bucket here halves
		// the reads of a burst of due reminders (after an outage, thousands).
		h, ok := s.view.Get(e.ID)
		if !ok {
			return nil
		}
		if !h.Open() || !now.Before(h.Deadline) {
			return nil
		}
		kind := bus.NotifyReminder
		if e.Kind == holdview.TimerEscalate {
			kind = bus.NotifyEscalation
			if h.Escalated {
				return nil
			}
		} else if h.Reminded {
			return nil
		}
		// Notify first, then mark: a crash in between re-sends with the same
		// Msg-Id, which the NOTIFY stream absorbs.
		if err := s.notifier.Send(ctx, kind, h, now); err != nil {
			return err
		}
		out, err := s.holds.Mutate(ctx, e.ID, func(c *hold.Hold) error {
			if e.Kind == holdview.TimerEscalate {
				if c.Escalated {
					return store.ErrNoChange
				}
				c.Escalated = true
			} else {
				if c.Reminded {
					return store.ErrNoChange
				}
				c.Reminded = true
			}
			return nil
		})
		if errors.Is(err, hold.ErrHoldNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		s.view.Observe(out)
		return nil
	}
	return nil
}

// deadlinePath names how a hold that reached its deadline ended: when every
// basis that sets the deadline is a patient's request to wait a time (not
// until a review), the delay ended as the patient asked
// (PathPatientDelayEnded); otherwise the hard deadline cut a hold short that
// something (a review, a correction) was meant to end (PathDeadline).
func deadlinePath(h *hold.Hold) (hold.ReleasePath, string) {
	binding := 0
	for _, b := range hold.PolicyBases(h.Bases) {
		switch {
		case b.Deadline.IsZero() || b.Deadline.Before(h.Deadline):
			continue // ended before the hold did
		case b.Deadline.After(h.Deadline):
			// The hold's cap (max_hold) ended it before this basis would.
			return hold.PathDeadline, "hard deadline reached"
		}
		binding++
		if b.Kind != policy.BasisPatientRequest || b.Until != policy.UntilElapsed {
			return hold.PathDeadline, "hard deadline reached"
		}
	}
	if binding == 0 {
		return hold.PathDeadline, "hard deadline reached"
	}
	return hold.PathPatientDelayEnded, "the delay the patient asked for ended"
}
