package pipeline

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// APITestEnv exposes a running pipeline on a real in-process NATS server to
// the external tests of this directory (package pipeline_test), which drive
// the request/reply API of router/api over it: router/api imports this
// package, so its own tests cannot reach these helpers.
type APITestEnv struct {
	e *pipeEnv
	p *Pipeline
}

// StartAPITestEnv starts the test pipeline (the explicit test policy of
// pipeline_helpers_test.go) and stops it when the test ends.
func StartAPITestEnv(t testing.TB) *APITestEnv {
	e := newPipeEnv(t)
	return &APITestEnv{e: e, p: e.start()}
}

// NC is the client connection to the test server.
func (a *APITestEnv) NC() *nats.Conn { return a.e.js.NC }

// Service is the pipeline's Service.
func (a *APITestEnv) Service() *Service { return a.p.Service() }

// Now is the test clock's time.
func (a *APITestEnv) Now() time.Time { return a.e.clock.Now() }

// SendPathology stores a pathology result (OBR-24 SP) for patient MRN1 with
// control ID ctrl and filler order number filler, as the intake would.
func (a *APITestEnv) SendPathology(ctrl, filler string) {
	a.e.send(msgSpec{ctrl: ctrl, filler: filler, section: "SP"})
}

// ConsentForTest returns the test policy's Consent for patient, asking to hold
// pathology until a clinician's review when hold is true.
func ConsentForTest(patient string, hold bool) []byte {
	b, _ := json.Marshal(testConsent{Patient: patient, Status: "active", Hold: hold})
	return b
}
