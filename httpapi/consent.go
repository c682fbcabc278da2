package httpapi

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/resultgate/resultgate/router/pipeline"

	"github.com/resultgate/resultgate/router/store"

	"github.com/resultgate/resultgate/auth"
	"github.com/resultgate/resultgate/router/hold"
)

// operationOutcome writes a FHIR R4 OperationOutcome with one issue.
func operationOutcome(w http.ResponseWriter, status int, code, diagnostics string) {
	w.Header().Set("Content-Type", "application/fhir+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"resourceType": "OperationOutcome",
		"issue": []map[string]string{{
			"severity": "error", "code": code, "diagnostics": diagnostics,
		}},
	})
}

// fhirError answers FHIR endpoints' errors as OperationOutcome.
func fhirError(w http.ResponseWriter, err error) {
	ae := fromService(err)
	code := map[int]string{
		http.StatusBadRequest: "invalid", http.StatusNotFound: "not-found",
		http.StatusRequestEntityTooLarge: "too-costly", http.StatusForbidden: "forbidden",
		http.StatusConflict: "conflict", http.StatusUnprocessableEntity: "invalid",
	}[ae.Status]
	if code == "" {
		code = "exception"
	}
	operationOutcome(w, ae.Status, code, ae.Reason)
}

func (a *API) putConsent(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			operationOutcome(w, http.StatusRequestEntityTooLarge, "too-costly", "Consent over 1 MiB")
			return nil
		}
		operationOutcome(w, http.StatusBadRequest, "invalid", "reading the body: "+err.Error())
		return nil
	}
	if !json.Valid(body) {
		operationOutcome(w, http.StatusBadRequest, "invalid", "the body is not JSON")
		return nil
	}
	// ?patient= names the patient as senders identify them in PID-3
	// (ID^^^AUTHORITY) when the Consent's patient.identifier does not.
	res, err := a.svc.PutConsent(r.Context(), pipeline.ConsentPut{Consent: body, By: p.Name, Patient: r.URL.Query().Get("patient")})
	if err != nil {
		if errors.Is(err, hold.ErrBadRequest) || !isKnown(err) {
			// The Consent reader's messages name the element; they carry no PHI
			// beyond what the caller just sent.
			operationOutcome(w, http.StatusBadRequest, "invalid", err.Error())
			return nil
		}
		fhirError(w, err)
		return nil
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(res)
	return nil
}

// isKnown reports whether err is one of the pipeline's sentinels (anything else
// from PutConsent is the Consent reader rejecting the resource).
func isKnown(err error) bool {
	for _, e := range []error{hold.ErrHoldNotFound, store.ErrConsentNotFound, hold.ErrAlreadyReleased, hold.ErrForbidden, hold.ErrConflict, hold.ErrReasonRequired} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func (a *API) getConsent(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	patient := r.URL.Query().Get("patient")
	if patient == "" {
		operationOutcome(w, http.StatusBadRequest, "required", "search parameter patient is required")
		return nil
	}
	rec, err := a.svc.GetConsent(r.Context(), patient)
	entries := []map[string]json.RawMessage{}
	switch {
	case errors.Is(err, store.ErrConsentNotFound):
	case err != nil:
		fhirError(w, err)
		return nil
	default:
		entries = append(entries, map[string]json.RawMessage{"resource": rec.Consent})
	}
	if err := a.access(r.Context(), p, "consent.read", "", ""); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/fhir+json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"resourceType": "Bundle", "type": "searchset", "total": len(entries), "entry": entries,
	})
	return nil
}
