package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/resultgate/resultgate/router/feed"

	"github.com/resultgate/resultgate/router/dead"

	"github.com/resultgate/resultgate/router/pipeline"

	"github.com/resultgate/resultgate/router/holdview"

	"github.com/resultgate/resultgate/router/audit"

	"github.com/resultgate/resultgate/router/store"

	"github.com/nats-io/nats.go"
	"github.com/resultgate/resultgate/router/bus"
	"github.com/resultgate/resultgate/router/hold"
)

// API error codes.
const (
	CodeNotFound        = "not_found"
	CodeAlreadyReleased = "already_released"
	CodeReasonRequired  = "reason_required"
	CodeForbidden       = "forbidden"
	CodeBadRequest      = "bad_request"
	CodeBasisActive     = "basis_active"
	CodeClosed          = "closed"
	CodeConflict        = "conflict"
	CodeInternal        = "internal"
)

// Error is the error part of an API response.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error returns "code: message".
func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Response is the envelope of every API reply: Data on success, Error
// otherwise.
type Response struct {
	Data  json.RawMessage `json:"data,omitempty"`
	Error *Error          `json:"error,omitempty"`
}

// code maps a service error to an API error code.
func code(err error) string {
	switch {
	case errors.Is(err, hold.ErrHoldNotFound), errors.Is(err, store.ErrConsentNotFound), errors.Is(err, dead.ErrNotFound), errors.Is(err, hold.ErrDeterminationNotFound):
		return CodeNotFound
	case errors.Is(err, hold.ErrAlreadyReleased):
		return CodeAlreadyReleased
	case errors.Is(err, hold.ErrReasonRequired):
		return CodeReasonRequired
	case errors.Is(err, hold.ErrForbidden):
		return CodeForbidden
	case errors.Is(err, hold.ErrBadRequest):
		return CodeBadRequest
	case errors.Is(err, pipeline.ErrBasisActive):
		return CodeBasisActive
	case errors.Is(err, hold.ErrHoldClosed), errors.Is(err, hold.ErrDeterminationEnded):
		return CodeClosed
	case errors.Is(err, hold.ErrConflict):
		return CodeConflict
	default:
		return CodeInternal
	}
}

// Request bodies of the API.
type (
	// HoldIDRequest names a hold (holds.get). By and Role name the reader:
	// the read of the hold's content is then audited (action "hold.read"),
	// as the HTTP API audits every read.
	HoldIDRequest struct {
		ID   string `json:"id"`
		By   string `json:"by,omitempty"`
		Role string `json:"role,omitempty"`
	}
	// ReleaseAPIRequest is holds.release.
	ReleaseAPIRequest struct {
		ID string `json:"id"`
		pipeline.AckRequest
	}
	// OverrideAPIRequest is holds.override.
	OverrideAPIRequest struct {
		ID string `json:"id"`
		pipeline.OverrideRequest
	}
	// ConsentGetRequest is consent.get.
	ConsentGetRequest struct {
		Patient string `json:"patient"`
	}
	// DeadListRequest is dead.list.
	DeadListRequest struct {
		Limit int `json:"limit,omitempty"`
		// Reason keeps the records of one reason (e.g. "unattributed").
		Reason string `json:"reason,omitempty"`
		// Open leaves out the records an operator discarded.
		Open bool `json:"open,omitempty"`
	}
	// DeadReplayRequest is dead.replay.
	DeadReplayRequest struct {
		Seq uint64 `json:"seq"`
		By  string `json:"by"`
	}
)

// maxAPIBody bounds a request body (a Consent is the largest).
const maxAPIBody = 1 << 20

// apiTimeout bounds one request's work.
const apiTimeout = 30 * time.Second

// cancelWait is how long Stop waits for cancelled requests to return.
const cancelWait = time.Second

// apiConcurrency bounds the requests handled at once by one instance.
const apiConcurrency = 64

// Server is the request/reply API of one instance: a queue subscription on
// resultgate.api.> whose requests are handled by a pipeline.Service.
type Server struct {
	sub    *nats.Subscription
	svc    *pipeline.Service
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// DefaultQueue is the queue group the instances of a deployment share, so
// each request is answered once.
const DefaultQueue = "resultgate-api"

// Start subscribes the request/reply API on resultgate.api.> in queue group
// queue (DefaultQueue when empty). Each request is handled in its own
// goroutine (at most apiConcurrency at once) under apiTimeout; Stop cancels
// those still running.
func Start(nc *nats.Conn, queue string, svc *pipeline.Service) (*Server, error) {
	if queue == "" {
		queue = DefaultQueue
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv := &Server{svc: svc, cancel: cancel}
	sem := make(chan struct{}, apiConcurrency)
	sub, err := nc.QueueSubscribe(bus.SubjectAPIAll, queue, func(m *nats.Msg) {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		srv.wg.Add(1)
		go func() {
			defer srv.wg.Done()
			defer func() { <-sem }()
			rctx, cancel := context.WithTimeout(ctx, apiTimeout)
			defer cancel()
			data, err := srv.handle(rctx, bus.APIOperation(m.Subject), m.Data)
			resp := Response{Data: data}
			if err != nil {
				resp = Response{Error: &Error{Code: code(err), Message: err.Error()}}
			}
			out, _ := json.Marshal(resp)
			if m.Reply != "" {
				_ = m.Respond(out)
			}
		}()
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("subscribing %s: %w", bus.SubjectAPIAll, err)
	}
	srv.sub = sub
	// The server has the subscription once it answers a ping: from then on
	// a request from any connection reaches this instance (without it, an
	// instance reported started could answer "no responders" for a moment).
	if err := nc.FlushTimeout(startFlushTimeout); err != nil {
		_ = sub.Unsubscribe()
		cancel()
		return nil, fmt.Errorf("subscribing %s: %w", bus.SubjectAPIAll, err)
	}
	return srv, nil
}

// startFlushTimeout bounds Start's wait for the server to confirm the
// subscription.
const startFlushTimeout = 10 * time.Second

// Stop drains the subscription (no new requests; those delivered are
// handled), then waits for the requests in hand until ctx ends, when it
// cancels them and waits at most cancelWait more. It is idempotent.
func (s *Server) Stop(ctx context.Context) error {
	var err error
	s.once.Do(func() {
		if derr := s.sub.Drain(); derr != nil && !errors.Is(derr, nats.ErrConnectionClosed) {
			err = fmt.Errorf("draining API: %w", derr)
		}
		done := make(chan struct{})
		go func() { s.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			// Cancel the requests still running; give them a moment to
			// return, but do not wait on one that ignores its context.
			s.cancel()
			select {
			case <-done:
			case <-time.After(cancelWait):
			}
			err = errors.Join(err, fmt.Errorf("stopping API: %w", ctx.Err()))
		}
		s.cancel()
	})
	return err
}

func decodeReq(data []byte, v any) error {
	if len(data) > maxAPIBody {
		return fmt.Errorf("request body over %d bytes: %w", maxAPIBody, hold.ErrBadRequest)
	}
	if len(data) == 0 {
		data = []byte("{}")
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("decoding request: %w: %w", hold.ErrBadRequest, err)
	}
	return nil
}

// handle dispatches one request to the Service.
func (srv *Server) handle(ctx context.Context, op string, body []byte) (json.RawMessage, error) {
	s := srv.svc
	var out any
	var err error
	switch op {
	case bus.OpHoldsList:
		var f holdview.Filter
		if err = decodeReq(body, &f); err == nil {
			out, err = s.ListHolds(ctx, f)
		}
	case bus.OpHoldsGet:
		var r HoldIDRequest
		if err = decodeReq(body, &r); err == nil {
			var h *hold.Hold
			if h, err = s.GetHold(ctx, r.ID); err == nil && r.By != "" {
				err = s.RecordAccess(ctx, pipeline.AccessEvent{Kind: bus.AuditAccess, Action: "hold.read", HoldID: h.ID, Actor: r.By, Role: r.Role})
			}
			out = h
		}
	case bus.OpHoldsRelease:
		var r ReleaseAPIRequest
		if err = decodeReq(body, &r); err == nil {
			out, err = s.Acknowledge(ctx, r.ID, r.AckRequest)
		}
	case bus.OpHoldsOverride:
		var r OverrideAPIRequest
		if err = decodeReq(body, &r); err == nil {
			out, err = s.Override(ctx, r.ID, r.OverrideRequest)
		}
	case bus.OpHoldsPlace:
		var r pipeline.PlaceRequest
		if err = decodeReq(body, &r); err == nil {
			out, err = s.PlaceDetermination(ctx, r)
		}
	case bus.OpDeterminationsList:
		var f pipeline.DeterminationFilter
		if err = decodeReq(body, &f); err == nil {
			out, err = s.ListDeterminations(ctx, f)
		}
	case bus.OpDeterminationsWithdraw:
		var r pipeline.WithdrawRequest
		if err = decodeReq(body, &r); err == nil {
			out, err = s.WithdrawDetermination(ctx, r)
		}
	case bus.OpConsentPut:
		var r pipeline.ConsentPut
		if err = decodeReq(body, &r); err == nil {
			out, err = s.PutConsent(ctx, r)
		}
	case bus.OpConsentGet:
		var r ConsentGetRequest
		if err = decodeReq(body, &r); err == nil {
			out, err = s.GetConsent(ctx, r.Patient)
		}
	case bus.OpDeadList:
		var r DeadListRequest
		if err = decodeReq(body, &r); err == nil {
			out, err = s.DeadFind(ctx, dead.Query{Reason: r.Reason, Open: r.Open, Limit: r.Limit})
		}
	case bus.OpDeadDiscard:
		var r dead.DiscardRequest
		if err = decodeReq(body, &r); err == nil {
			out, err = s.DeadDiscard(ctx, r)
		}
	case bus.OpDeadReplay:
		var r DeadReplayRequest
		if err = decodeReq(body, &r); err == nil {
			out, err = s.DeadReplay(ctx, r.Seq, r.By)
		}
	case bus.OpReleasesList:
		var q feed.ReleasesQuery
		if err = decodeReq(body, &q); err == nil {
			out, err = s.Releases(ctx, q)
		}
	case bus.OpAuditQuery:
		var q audit.Query
		if err = decodeReq(body, &q); err == nil {
			out, err = s.Audit(ctx, q)
		}
	default:
		return nil, fmt.Errorf("unknown operation %q: %w", op, hold.ErrBadRequest)
	}
	if err != nil {
		return nil, err
	}
	data, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("encoding response: %w", err)
	}
	return data, nil
}

// Client calls the request/reply API (the CLI uses it).
type Client struct {
	NC      *nats.Conn
	Timeout time.Duration
}

// Call sends req to operation op and decodes the reply's data into out. An API
// error comes back as *Error.
func (c Client) Call(ctx context.Context, op string, req, out any) error {
	body, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("encoding request: %w", err)
	}
	timeout := c.Timeout
	if timeout == 0 {
		timeout = apiTimeout
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	m, err := c.NC.RequestWithContext(rctx, bus.APISubject(op), body)
	if err != nil {
		return fmt.Errorf("calling %s: %w", op, err)
	}
	var resp Response
	if err := json.Unmarshal(m.Data, &resp); err != nil {
		return fmt.Errorf("decoding %s reply: %w", op, err)
	}
	if resp.Error != nil {
		return resp.Error
	}
	if out != nil && len(resp.Data) > 0 {
		if err := json.Unmarshal(resp.Data, out); err != nil {
			return fmt.Errorf("decoding %s data: %w", op, err)
		}
	}
	return nil
}
