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
// posted it and when.
type ConsentRecord struct {
	PatientKey string          `json:"patient_key"`
	Consent    json.RawMessage `json:"consent"`
	Actor      string          `json:"actor,omitempty"`
	At         time.Time       `json:"at"`
	Revision   uint64          `json:"revision,omitempty"`
}

// Consents reads and writes the consents bucket (history kept).
type Consents struct {
	kv KV[ConsentRecord]
}

// NewConsents wraps the consents bucket.
func NewConsents(kv jetstream.KeyValue) *Consents {
	return &Consents{kv: NewKV[ConsentRecord](kv, "consent")}
}

// Put stores rec as the patient's current Consent.
func (s *Consents) Put(ctx context.Context, rec ConsentRecord) (ConsentRecord, error) {
	rev, err := s.kv.Put(ctx, rec.PatientKey, rec)
	if err != nil {
		return rec, err
	}
	rec.Revision = rev
	return rec, nil
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
	rec.Revision = rev
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
		recs[i].Revision = revs[i]
	}
	return recs, nil
}
