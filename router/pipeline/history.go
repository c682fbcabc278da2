package pipeline

import (
	"context"

	"github.com/resultgate/resultgate/router/store"
)

// lazyHistory is the classifier's policy.History for one message: it reads
// the patients bucket only if the classifier asks (most results never do),
// once. A read error answers false and is kept in err; the classify step
// checks it and retries the message rather than classify on a guess.
type lazyHistory struct {
	ctx   context.Context
	store *store.History
	key   string
	done  bool
	val   bool
	err   error
}

// PriorMalignancy reports whether the patient had a malignancy on record.
func (h *lazyHistory) PriorMalignancy(string) bool {
	if !h.done {
		hist, err := h.store.Get(h.ctx, h.key)
		h.val, h.err, h.done = hist.Malignancy, err, true
	}
	return h.val
}
