package bus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrSkip, returned by ReadAll's decode, leaves the message out of the result.
var ErrSkip = errors.New("skip")

// ErrDone, returned by ReadAll's decode, ends the read there: the message is
// left out and what was read so far is returned.
var ErrDone = errors.New("done")

// fetchBytes bounds the bytes of one batch ReadAll fetches: one message of
// the largest size the server accepts (max_payload counts headers and data)
// plus room for its subjects, so a batch always holds at least one message
// and a stream of 16 MiB messages is read one or two at a time, not 256.
func fetchBytes(js jetstream.JetStream) int {
	mp := int64(DefaultMaxPayload)
	if nc := js.Conn(); nc != nil && nc.MaxPayload() > 0 {
		mp = nc.MaxPayload()
	}
	return int(mp) + 64<<10
}

// ReadAll reads a stream through an ordered consumer until nothing is pending
// or limit items were read. It fetches batches of at most 256 messages and
// fetchBytes bytes, one at a time, so its memory is bounded whatever the
// messages' sizes (decode should not keep m's data). The ephemeral consumer is deleted when done (and
// expires after readerInactive if the delete is lost), so frequent reads (audit
// queries, reports, pollers) do not pile up consumers against the server's limit.
//
// In a cluster a just-created consumer can briefly have no responder for its
// API or pull requests (its assignment is still being applied): such a read
// is retried a few times, from the start, before the error is returned.
func ReadAll[T any](ctx context.Context, js jetstream.JetStream, stream string, cfg jetstream.OrderedConsumerConfig, limit int, decode func(jetstream.Msg, uint64) (T, error)) ([]T, error) {
	for attempt := 1; ; attempt++ {
		out, err := readAllOnce(ctx, js, stream, cfg, limit, decode)
		if err == nil || attempt == readRetries || !isNoResponders(err) || ctx.Err() != nil {
			return out, err
		}
		select {
		case <-ctx.Done():
			return out, err
		case <-time.After(time.Duration(attempt) * 100 * time.Millisecond):
		}
	}
}

// readRetries bounds ReadAll's attempts on a transient "no responders".
const readRetries = 5

// isNoResponders reports a request that found no responder (nats.go returns
// nats.ErrNoResponders, sometimes only by its text through the jetstream API).
func isNoResponders(err error) bool {
	return errors.Is(err, nats.ErrNoResponders) || strings.Contains(err.Error(), nats.ErrNoResponders.Error())
}

func readAllOnce[T any](ctx context.Context, js jetstream.JetStream, stream string, cfg jetstream.OrderedConsumerConfig, limit int, decode func(jetstream.Msg, uint64) (T, error)) ([]T, error) {
	if cfg.InactiveThreshold == 0 {
		cfg.InactiveThreshold = readerInactive
	}
	cons, err := js.OrderedConsumer(ctx, stream, cfg)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", stream, err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", stream, err)
	}
	defer func() {
		// The ordered consumer may have been recreated under a new name while
		// reading: delete the current one.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if cur, err := cons.Info(dctx); err == nil {
			_ = js.DeleteConsumer(dctx, stream, cur.Name)
		}
	}()
	out := []T{}
	if info.NumPending == 0 {
		return out, nil
	}
	for len(out) < limit {
		batch, err := cons.Fetch(min(limit-len(out), 256), jetstream.FetchMaxBytes(fetchBytes(js)), jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return out, fmt.Errorf("reading %s: %w", stream, err)
		}
		n := 0
		var last uint64 = 1
		for m := range batch.Messages() {
			n++
			meta, err := m.Metadata()
			if err != nil {
				return out, fmt.Errorf("reading %s: %w", stream, err)
			}
			last = meta.NumPending
			v, err := decode(m, meta.Sequence.Stream)
			if errors.Is(err, ErrDone) {
				return out, nil
			}
			if errors.Is(err, ErrSkip) {
				if last == 0 {
					break
				}
				continue
			}
			if err != nil {
				return out, err
			}
			out = append(out, v)
			if last == 0 || len(out) >= limit {
				break
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return out, fmt.Errorf("reading %s: %w", stream, err)
		}
		if n == 0 || last == 0 {
			break
		}
		if err := ctx.Err(); err != nil {
			return out, err
		}
	}
	return out, nil
}

// readerInactive is how long an abandoned reader's consumer outlives its last use.
const readerInactive = 30 * time.Second

// ValidToken reports whether s is usable as one subject token or KV key.
func ValidToken(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
