package pipeline

import (
	"context"
	"strings"

	"github.com/resultgate/resultgate/hl7"
	"github.com/resultgate/resultgate/policy"
	"github.com/resultgate/resultgate/router/hold"
	"github.com/resultgate/resultgate/router/store"
)

// orderRef is the identity of a message's order: its filler order number,
// its issuer and their keys. A filler number is unique only within its
// issuer, so the order index and the determinations are keyed by both
// (hold.OrderKey). legacy is the key of data stored before issuers were keyed
// (hold.LegacyOrderKey), read during the transition.
type orderRef struct {
	filler, issuer string
	key, legacy    string
}

// orderIssuer returns the issuer of the message's first order: the filler
// number's namespace (OBR-3.2, else ORC-3.2) or, without one, the sending
// facility (MSH-4.1), in hold.CanonicalIssuer form.
func orderIssuer(m *hl7.Message) string {
	for _, name := range []string{"OBR", "ORC"} {
		if seg := m.First(name); seg != nil {
			if ns := strings.TrimSpace(seg.Field(3).Component(2)); ns != "" && seg.Field(3).Component(1) != "" {
				return hold.CanonicalIssuer(ns)
			}
		}
	}
	return hold.CanonicalIssuer(m.MSH().SendingFacility.NamespaceID)
}

// orderOf returns the order identity of message m with report r ("" keys when
// it names no filler number).
func (s *Service) orderOf(m *hl7.Message, r *policy.Report) orderRef {
	var o orderRef
	if len(r.Orders) == 0 || r.Orders[0].FillerID == "" {
		return o
	}
	o.filler, o.issuer = r.Orders[0].FillerID, orderIssuer(m)
	o.key = hold.OrderKey(s.cfg.Secret, o.issuer, o.filler)
	o.legacy = hold.LegacyOrderKey(s.cfg.Secret, o.filler)
	return o
}

// keys returns the determinations keys of the order: its own, then the
// legacy one.
func (o orderRef) keys() []string {
	if o.key == "" {
		return nil
	}
	return []string{o.key, o.legacy}
}

// orderEntry returns the latest version of the order in the order index. An
// order last seen before issuers were keyed is found under its legacy key;
// a held legacy version counts only when its hold is of the same patient (a
// legacy key cannot tell issuers apart, the patient can), so another lab's
// order with the same filler number is not taken for a correction of it.
//
// Both keys are read in one request: a first version (the common case)
// misses the order's own key, and the legacy read then costs no extra round
// trip.
func (s *Service) orderEntry(ctx context.Context, o orderRef, patientKey string) (store.OrderEntry, bool, error) {
	if o.legacy == "" || o.legacy == o.key {
		return s.orders.Get(ctx, o.key)
	}
	es, found, err := s.orders.GetMany(ctx, o.key, o.legacy)
	if err != nil {
		return store.OrderEntry{}, false, err
	}
	if found[0] {
		return es[0], true, nil
	}
	if !found[1] {
		return store.OrderEntry{}, false, nil
	}
	e := es[1]
	if e.State == hold.StateHeld {
		h, err := s.holds.Get(ctx, e.HoldID)
		if err == nil && h.PatientKey != patientKey {
			return store.OrderEntry{}, false, nil
		}
	}
	return e, true, nil
}
