package router

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/resultgate/resultgate/policy"
)

// Buckets owned by the pipeline (created by EnsurePipelineBuckets).
const (
	// KVDeterminations holds clinician determinations (Preventing Harm holds)
	// keyed by order key.
	KVDeterminations = "determinations"
	// KVOrders maps an order key to the latest hold (or immediate release) of
	// that order, so a correction finds the version it corrects.
	KVOrders = "orders"
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

// ConsentStore reads and writes the consents bucket (history kept).
type ConsentStore struct {
	kv jetstream.KeyValue
}

// Put stores rec as the patient's current Consent, numbered one after the
// patient's previous one (compare-and-set, so two concurrent puts for one
// patient get two numbers).
func (s *ConsentStore) Put(ctx context.Context, rec ConsentRecord) (ConsentRecord, error) {
	for range maxCASAttempts {
		var last uint64 // the bucket revision of the current Consent; 0: none
		rec.Revision = 1
		e, err := s.kv.Get(ctx, rec.PatientKey)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return rec, fmt.Errorf("reading consent: %w", err)
		default:
			last = e.Revision()
			rec.Revision = patientRevision(e) + 1
		}
		data, err := json.Marshal(rec)
		if err != nil {
			return rec, fmt.Errorf("encoding consent: %w", err)
		}
		if last == 0 {
			_, err = s.kv.Create(ctx, rec.PatientKey, data)
		} else {
			_, err = s.kv.Update(ctx, rec.PatientKey, data, last)
		}
		if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			continue
		}
		if err != nil {
			return rec, fmt.Errorf("writing consent: %w", err)
		}
		return rec, nil
	}
	return rec, fmt.Errorf("consent: %w", ErrConflict)
}

// patientRevision returns the per-patient revision stored in e. A record
// written before Consents were numbered per patient has none: its bucket
// revision stands in, so that the numbering still only goes up.
func patientRevision(e jetstream.KeyValueEntry) uint64 {
	var r struct {
		Revision uint64 `json:"revision"`
	}
	if json.Unmarshal(e.Value(), &r) == nil && r.Revision > 0 {
		return r.Revision
	}
	return e.Revision()
}

// Get returns the patient's current Consent, or ErrConsentNotFound.
func (s *ConsentStore) Get(ctx context.Context, patientKey string) (ConsentRecord, error) {
	var rec ConsentRecord
	if patientKey == "" {
		return rec, ErrConsentNotFound
	}
	e, err := s.kv.Get(ctx, patientKey)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return rec, ErrConsentNotFound
	}
	if err != nil {
		return rec, fmt.Errorf("reading consent: %w", err)
	}
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return rec, fmt.Errorf("decoding consent: %w", err)
	}
	rec.Revision = patientRevision(e)
	return rec, nil
}

// History returns the patient's Consents, oldest first (as many as the bucket
// keeps).
func (s *ConsentStore) History(ctx context.Context, patientKey string) ([]ConsentRecord, error) {
	es, err := s.kv.History(ctx, patientKey)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, ErrConsentNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("reading consent history: %w", err)
	}
	out := make([]ConsentRecord, 0, len(es))
	for _, e := range es {
		if e.Operation() != jetstream.KeyValuePut {
			continue
		}
		var rec ConsentRecord
		if err := json.Unmarshal(e.Value(), &rec); err != nil {
			return nil, fmt.Errorf("decoding consent: %w", err)
		}
		rec.Revision = patientRevision(e)
		out = append(out, rec)
	}
	return out, nil
}

// Determination is a clinician's individual decision to hold the result of
// one order (Preventing Harm, 45 CFR 171.201).
type Determination struct {
	// Order is the filler order number (OBR-3) as given by the clinician.
	Order    string `json:"order"`
	OrderKey string `json:"order_key"`
	Reason   string `json:"reason"`
	// HarmType is the type of harm the determination prevents (HarmTypes).
	HarmType string    `json:"harm_type,omitempty"`
	By       string    `json:"by"`
	Role     string    `json:"role,omitempty"`
	At       time.Time `json:"at"`
}

// Types of harm under the Preventing Harm exception, 45 CFR 171.201(d).
const (
	// HarmLifeOrSafety: access is reasonably likely to endanger the life or
	// physical safety of the patient or another person (171.201(d)(3), the
	// standard when the patient themselves receives the result).
	HarmLifeOrSafety = "life-or-physical-safety"
	// HarmSubstantialOther: the result references another person and access
	// is reasonably likely to cause that person substantial harm
	// (171.201(d)(2)).
	HarmSubstantialOther = "substantial-harm-to-other"
)

// HarmTypes lists the accepted harm types.
var HarmTypes = []string{HarmLifeOrSafety, HarmSubstantialOther}

// determinationSet is the value stored per order key.
type determinationSet struct {
	Items []Determination `json:"items"`
}

// DeterminationStore reads and writes the determinations bucket.
type DeterminationStore struct {
	kv jetstream.KeyValue
}

// Add appends d to its order's determinations (compare-and-set).
func (s *DeterminationStore) Add(ctx context.Context, d Determination) error {
	for range maxCASAttempts {
		var set determinationSet
		var rev uint64
		e, err := s.kv.Get(ctx, d.OrderKey)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return fmt.Errorf("reading determinations: %w", err)
		default:
			if err := json.Unmarshal(e.Value(), &set); err != nil {
				return fmt.Errorf("decoding determinations: %w", err)
			}
			rev = e.Revision()
		}
		set.Items = append(set.Items, d)
		data, _ := json.Marshal(set)
		if rev == 0 {
			_, err = s.kv.Create(ctx, d.OrderKey, data)
			if errors.Is(err, jetstream.ErrKeyExists) {
				continue
			}
		} else {
			_, err = s.kv.Update(ctx, d.OrderKey, data, rev)
			if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
				continue
			}
		}
		if err != nil {
			return fmt.Errorf("writing determinations: %w", err)
		}
		return nil
	}
	return fmt.Errorf("determinations: %w", ErrConflict)
}

// Get returns the determinations on order key (none is not an error).
func (s *DeterminationStore) Get(ctx context.Context, orderKey string) ([]Determination, error) {
	if orderKey == "" {
		return nil, nil
	}
	e, err := s.kv.Get(ctx, orderKey)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading determinations: %w", err)
	}
	var set determinationSet
	if err := json.Unmarshal(e.Value(), &set); err != nil {
		return nil, fmt.Errorf("decoding determinations: %w", err)
	}
	return set.Items, nil
}

// OrderEntry is the orders-index value: the latest version of an order.
type OrderEntry struct {
	// HoldID is the hold (or, for an immediate release, the release) ID of the
	// latest version.
	HoldID string `json:"hold_id"`
	// State is the state when written; for held versions the hold record is
	// authoritative.
	State HoldState `json:"state"`
	MsgID string    `json:"msg_id"`
	At    time.Time `json:"at"`
	// Prior is the version this one followed, kept so a re-run of the same
	// message sees the prior it saw the first time.
	Prior *policy.Prior `json:"prior,omitempty"`
}

// OrderIndex reads and writes the orders bucket.
type OrderIndex struct {
	kv jetstream.KeyValue
}

// Get returns the latest version of order key, or ok=false.
func (o *OrderIndex) Get(ctx context.Context, orderKey string) (OrderEntry, bool, error) {
	var e OrderEntry
	if orderKey == "" {
		return e, false, nil
	}
	kve, err := o.kv.Get(ctx, orderKey)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return e, false, nil
	}
	if err != nil {
		return e, false, fmt.Errorf("reading order index: %w", err)
	}
	if err := json.Unmarshal(kve.Value(), &e); err != nil {
		return e, false, fmt.Errorf("decoding order index: %w", err)
	}
	return e, true, nil
}

// Put records e as the latest version of order key.
func (o *OrderIndex) Put(ctx context.Context, orderKey string, e OrderEntry) error {
	if orderKey == "" {
		return nil
	}
	data, _ := json.Marshal(e)
	if _, err := o.kv.Put(ctx, orderKey, data); err != nil {
		return fmt.Errorf("writing order index: %w", err)
	}
	return nil
}
