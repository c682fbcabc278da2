package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

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
func fhirError(w http.ResponseWriter, err error) { writeOutcome(w, fromService(err)) }

// writeOutcome writes e as an OperationOutcome, its issue type (FHIR value set
// issue-type) chosen by the HTTP status.
func writeOutcome(w http.ResponseWriter, e *apiError) {
	code := map[int]string{
		http.StatusBadRequest: "invalid", http.StatusNotFound: "not-found",
		http.StatusRequestEntityTooLarge: "too-costly", http.StatusForbidden: "forbidden",
		http.StatusConflict: "conflict", http.StatusUnprocessableEntity: "invalid",
		http.StatusUnauthorized: "login", http.StatusUnsupportedMediaType: "not-supported",
	}[e.Status]
	if code == "" {
		code = "exception"
	}
	operationOutcome(w, e.Status, code, e.Reason)
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
	res, err := a.svc.PutConsent(r.Context(), pipeline.ConsentPut{Consent: body, By: p.Name, Role: string(p.Role), Patient: r.URL.Query().Get("patient")})
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
	consentCreated(w, r, res)
	return nil
}

// consentCreated answers a stored Consent as a FHIR create is answered: 201
// with Location (the version's URL: /fhir/Consent/<patient key>/_history/<n>),
// ETag and Last-Modified. The body follows the request's Prefer header:
// return=representation (the default) is the Consent as stored, with its id
// and meta.versionId; return=OperationOutcome says what was stored and which
// open holds were re-evaluated and released; return=minimal is empty.
func consentCreated(w http.ResponseWriter, r *http.Request, res pipeline.ConsentResult) {
	rec := res.Record
	vid := strconv.FormatUint(rec.Revision, 10)
	h := w.Header()
	h.Set("Location", "/fhir/Consent/"+rec.PatientKey+"/_history/"+vid)
	h.Set("ETag", `W/"`+vid+`"`)
	h.Set("Last-Modified", rec.At.UTC().Format(http.TimeFormat))
	switch prefer := r.Header.Get("Prefer"); {
	case strings.Contains(prefer, "return=minimal"):
		w.WriteHeader(http.StatusCreated)
	case strings.Contains(prefer, "return=OperationOutcome"):
		issues := []map[string]string{{"severity": "information", "code": "informational",
			"diagnostics": fmt.Sprintf("Consent stored as version %s; %d open hold(s) re-evaluated, %d released", vid, len(res.Reevaluated), len(res.Released))}}
		for _, id := range res.Released {
			issues = append(issues, map[string]string{"severity": "information", "code": "informational", "diagnostics": "released hold " + id})
		}
		h.Set("Content-Type", "application/fhir+json")
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(map[string]any{"resourceType": "OperationOutcome", "issue": issues})
	default:
		h.Set("Content-Type", "application/fhir+json")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write(append(consentResource(rec), '\n'))
	}
}

// consentResource returns the stored Consent with its logical id (the patient
// key) and meta.versionId and meta.lastUpdated set, the rest as posted.
func consentResource(rec store.ConsentRecord) []byte {
	var res map[string]json.RawMessage
	if err := json.Unmarshal(rec.Consent, &res); err != nil || res == nil {
		return rec.Consent // validated when stored; cannot happen
	}
	meta := map[string]json.RawMessage{}
	_ = json.Unmarshal(res["meta"], &meta)
	meta["versionId"], _ = json.Marshal(strconv.FormatUint(rec.Revision, 10))
	meta["lastUpdated"], _ = json.Marshal(rec.At.UTC().Format(time.RFC3339Nano))
	res["meta"], _ = json.Marshal(meta)
	res["id"], _ = json.Marshal(rec.PatientKey)
	out, _ := json.Marshal(res)
	return out
}

// readConsent serves GET /fhir/Consent/{key} and its /_history/{vid}: a read
// (or version read) by logical id, the patient key that Location names.
func (a *API) readConsent(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	var rev uint64
	if v := r.PathValue("vid"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n == 0 {
			operationOutcome(w, http.StatusBadRequest, "invalid", fmt.Sprintf("version id: want a positive number, got %q", v))
			return nil
		}
		rev = n
	}
	key := r.PathValue("key")
	if len(key) != hold.PatientKeyLen || strings.Trim(key, "0123456789abcdef") != "" {
		operationOutcome(w, http.StatusNotFound, "not-found", "no Consent with id "+strconv.Quote(key))
		return nil
	}
	rec, err := a.svc.ConsentVersion(r.Context(), key, rev)
	if err != nil {
		fhirError(w, err)
		return nil
	}
	if err := a.access(r.Context(), p, "consent.read", "", ""); err != nil {
		return err
	}
	vid := strconv.FormatUint(rec.Revision, 10)
	w.Header().Set("ETag", `W/"`+vid+`"`)
	w.Header().Set("Last-Modified", rec.At.UTC().Format(http.TimeFormat))
	w.Header().Set("Content-Type", "application/fhir+json")
	_, _ = w.Write(append(consentResource(rec), '\n'))
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
		entries = append(entries, map[string]json.RawMessage{"resource": consentResource(rec)})
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
