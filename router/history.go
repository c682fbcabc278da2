package router

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// PatientHistory is what resultgate remembers about a patient, keyed by the
// patient key in the patients bucket: enough for the new-cancer tag.
type PatientHistory struct {
	// Malignancy is true once a result tagged malignancy was seen.
	Malignancy bool `json:"malignancy"`
	// FirstMalignancyMsg is the Nats-Msg-Id of the first such result.
	FirstMalignancyMsg string    `json:"first_malignancy_msg,omitempty"`
	At                 time.Time `json:"at"`
}

// HistoryStore reads and writes the patients bucket.
type HistoryStore struct {
	kv jetstream.KeyValue
}

// Get returns the history of patientKey (zero when none).
func (s *HistoryStore) Get(ctx context.Context, patientKey string) (PatientHistory, error) {
	var h PatientHistory
	if patientKey == "" {
		return h, nil
	}
	e, err := s.kv.Get(ctx, patientKey)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return h, nil
	}
	if err != nil {
		return h, fmt.Errorf("reading patient history: %w", err)
	}
	if err := json.Unmarshal(e.Value(), &h); err != nil {
		return h, fmt.Errorf("decoding patient history: %w", err)
	}
	return h, nil
}

// MarkMalignancy records that msgID showed a malignancy for patientKey. The
// first writer wins; later calls (and re-runs) change nothing.
func (s *HistoryStore) MarkMalignancy(ctx context.Context, patientKey, msgID string, at time.Time) error {
	if patientKey == "" {
		return nil
	}
	data, _ := json.Marshal(PatientHistory{Malignancy: true, FirstMalignancyMsg: msgID, At: at.UTC()})
	_, err := s.kv.Create(ctx, patientKey, data)
	if err == nil || errors.Is(err, jetstream.ErrKeyExists) {
		if err != nil {
			cur, gerr := s.Get(ctx, patientKey)
			if gerr != nil {
				return gerr
			}
			if !cur.Malignancy {
				if _, err := s.kv.Put(ctx, patientKey, data); err != nil {
					return fmt.Errorf("writing patient history: %w", err)
				}
			}
		}
		return nil
	}
	return fmt.Errorf("writing patient history: %w", err)
}

// lazyHistory is the classifier's policy.History for one message: it reads
// the patients bucket only if the classifier asks (most results never do),
// once. A read error answers false and is kept in err; the classify step
// checks it and retries the message rather than classify on a guess.
type lazyHistory struct {
	ctx   context.Context
	store *HistoryStore
	key   string
	done  bool
	val   bool
	err   error
}

// PriorMalignancy reports whether the patient had a malignancy on record.
func (h *lazyHistory) PriorMalignancy(string) bool {
	if !h.done {
		hist, err := h.store.Get(h.ctx, h.key)
		h.val, h.err, h.done = hist.Malignancy, err, true
	}
	return h.val
}
