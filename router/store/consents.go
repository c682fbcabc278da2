package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ErrConsentNotFound means no Consent is on file for the patient.
var ErrConsentNotFound = errors.New("no consent on file")

// ConsentRecord is one stored Consent: the FHIR R4 Consent JSON as posted, who
// posted it, in which role, and when.
type ConsentRecord struct {
	PatientKey string          `json:"patient_key"`
	Consent    json.RawMessage `json:"consent"`
	Actor      string          `json:"actor,omitempty"`
	Role       string          `json:"role,omitempty"`
	At         time.Time       `json:"at"`
	// Revision counts this patient's Consents: 1 for the first, then 2, 3...
	// (the bucket's own revision runs across all patients).
	Revision uint64 `json:"revision,omitempty"`
}

// Consents reads and writes the consents bucket (history kept).
type Consents struct {
	kv KV[ConsentRecord]
}

// NewConsents wraps the consents bucket.
func NewConsents(kv jetstream.KeyValue) *Consents {
	return &Consents{kv: NewKV[ConsentRecord](kv, "consent")}
}

// ReadBatched makes Get talk to the server directly over r's connection
// (LastReader.one).
func (s *Consents) ReadBatched(r *LastReader) { s.kv.lr = r }

// Put stores rec as the patient's current Consent, numbered one after the
// patient's previous one (compare-and-set, so two concurrent puts for one
// patient get two numbers).
func (s *Consents) Put(ctx context.Context, rec ConsentRecord) (ConsentRecord, error) {
	out, _, err := s.kv.Update(ctx, rec.PatientKey, func(cur ConsentRecord, rev uint64) (ConsentRecord, error) {
		next := rec
		next.Revision = 1
		if rev != 0 {
			next.Revision = patientRevision(cur, rev) + 1
		}
		return next, nil
	})
	if err != nil {
		return rec, err
	}
	return out, nil
}

// patientRevision returns the per-patient revision of rec, stored at bucket
// revision rev. A record written before Consents were numbered per patient
// has none: its bucket revision stands in, so that the numbering still only
// goes up.
func patientRevision(rec ConsentRecord, rev uint64) uint64 {
	if rec.Revision > 0 {
		return rec.Revision
	}
	return rev
}

// Get returns the patient's current Consent, or ErrConsentNotFound.
func (s *Consents) Get(ctx context.Context, patientKey string) (ConsentRecord, error) {
	if patientKey == "" {
		return ConsentRecord{}, ErrConsentNotFound
	}
	rec, rev, err := s.kv.Get(ctx, patientKey)
	if errors.Is(err, errNotFound) {
		return rec, ErrConsentNotFound
	}
	if err != nil {
		return rec, err
	}
	rec.Revision = patientRevision(rec, rev)
	return rec, nil
}

// History returns the patient's Consents, oldest first (as many as the bucket
// keeps).
func (s *Consents) History(ctx context.Context, patientKey string) ([]ConsentRecord, error) {
	recs, revs, err := s.kv.History(ctx, patientKey)
	if errors.Is(err, errNotFound) {
		return nil, ErrConsentNotFound
	}
	if err != nil {
		return nil, err
	}
	for i := range recs {
		recs[i].Revision = patientRevision(recs[i], revs[i])
	}
	return recs, nil
}
