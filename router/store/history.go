package store

import (
	"context"
	"errors"
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

// History reads and writes the patients bucket.
type History struct {
	kv KV[PatientHistory]
}

// NewHistory wraps the patients bucket.
func NewHistory(kv jetstream.KeyValue) *History {
	return &History{kv: NewKV[PatientHistory](kv, "patient history")}
}

// Get returns the history of patientKey (zero when none).
func (s *History) Get(ctx context.Context, patientKey string) (PatientHistory, error) {
	if patientKey == "" {
		return PatientHistory{}, nil
	}
	h, _, err := s.kv.Get(ctx, patientKey)
	if errors.Is(err, errNotFound) {
		return PatientHistory{}, nil
	}
	return h, err
}

// MarkMalignancy records that msgID showed a malignancy for patientKey. The
// first writer wins; later calls (and re-runs) change nothing.
func (s *History) MarkMalignancy(ctx context.Context, patientKey, msgID string, at time.Time) error {
	if patientKey == "" {
		return nil
	}
	_, _, err := s.kv.Update(ctx, patientKey, func(cur PatientHistory, _ uint64) (PatientHistory, error) {
		if cur.Malignancy {
			return cur, ErrNoChange
		}
		return PatientHistory{Malignancy: true, FirstMalignancyMsg: msgID, At: at.UTC()}, nil
	})
	return err
}
