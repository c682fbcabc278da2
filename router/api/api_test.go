package api

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/resultgate/resultgate/router/dead"
	"github.com/resultgate/resultgate/router/hold"
	"github.com/resultgate/resultgate/router/pipeline"
	"github.com/resultgate/resultgate/router/store"
)

// TestCodeOfSentinels maps each documented sentinel, however wrapped, to its
// API error code; anything else is internal.
func TestCodeOfSentinels(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{hold.ErrHoldNotFound, CodeNotFound},
		{store.ErrConsentNotFound, CodeNotFound},
		{dead.ErrNotFound, CodeNotFound},
		{hold.ErrAlreadyReleased, CodeAlreadyReleased},
		{hold.ErrReasonRequired, CodeReasonRequired},
		{hold.ErrForbidden, CodeForbidden},
		{hold.ErrBadRequest, CodeBadRequest},
		{pipeline.ErrBasisActive, CodeBasisActive},
		{hold.ErrHoldClosed, CodeClosed},
		{hold.ErrConflict, CodeConflict},
		{errors.New("disk on fire"), CodeInternal},
	} {
		if got := code(fmt.Errorf("hold h1: %w", c.err)); got != c.want {
			t.Errorf("code(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}

// TestDecodeReqBounds refuses an oversized body and unknown fields as bad
// requests, and reads an empty body as {}.
func TestDecodeReqBounds(t *testing.T) {
	var r HoldIDRequest
	if err := decodeReq([]byte(`{"id":"h1","bogus":1}`), &r); !errors.Is(err, hold.ErrBadRequest) {
		t.Errorf("unknown field: %v", err)
	}
	if err := decodeReq([]byte(`{"id":"`+strings.Repeat("x", maxAPIBody)+`"}`), &r); !errors.Is(err, hold.ErrBadRequest) {
		t.Errorf("oversized body: %v", err)
	}
	r = HoldIDRequest{}
	if err := decodeReq(nil, &r); err != nil || r.ID != "" {
		t.Errorf("empty body: %+v, %v", r, err)
	}
}
