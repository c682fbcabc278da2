package bus

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrNotConnected is returned by the health checks while the NATS connection is
// down (reconnecting or closed).
var ErrNotConnected = errors.New("NATS not connected")

// ErrStreamMissing is returned by Ready when a stream or bucket does not exist.
var ErrStreamMissing = errors.New("stream missing")

// Live reports whether the NATS connection is usable or recovering: it fails
// only once the connection is closed for good (mount on /healthz; a reconnecting
// client is alive and will recover by itself).
func Live(nc *nats.Conn) error {
	if nc == nil || nc.IsClosed() {
		return fmt.Errorf("NATS connection closed: %w", ErrNotConnected)
	}
	return nil
}

// Ready reports whether resultgate can store messages now: the connection is up,
// JetStream answers, and every stream and bucket exists (mount on /readyz). Bound
// it with ctx.
func Ready(ctx context.Context, js jetstream.JetStream) error {
	var streams, buckets []string
	for _, cfg := range StreamConfigs(StreamsConfig{}) {
		streams = append(streams, cfg.Name)
	}
	for _, cfg := range BucketConfigs(StreamsConfig{}) {
		buckets = append(buckets, cfg.Bucket)
	}
	if err := Reachable(ctx, js); err != nil {
		return err
	}
	for _, err := range Missing(ctx, js, streams, buckets) {
		if err != nil {
			return err
		}
	}
	return nil
}

// Reachable reports whether the connection is up and JetStream answers.
func Reachable(ctx context.Context, js jetstream.JetStream) error {
	nc := js.Conn()
	if nc == nil || !nc.IsConnected() {
		return ErrNotConnected
	}
	if _, err := js.AccountInfo(ctx); err != nil {
		return fmt.Errorf("JetStream account info: %w", err)
	}
	return nil
}

// Missing looks up each of streams and then each of buckets and returns, in
// that order, nil for each one that exists and otherwise why not (wrapping
// ErrStreamMissing when it does not exist).
func Missing(ctx context.Context, js jetstream.JetStream, streams, buckets []string) []error {
	errs := make([]error, 0, len(streams)+len(buckets))
	for _, name := range streams {
		_, err := js.Stream(ctx, name)
		switch {
		case errors.Is(err, jetstream.ErrStreamNotFound):
			err = fmt.Errorf("stream %s: %w", name, ErrStreamMissing)
		case err != nil:
			err = fmt.Errorf("stream %s: %w", name, err)
		}
		errs = append(errs, err)
	}
	for _, name := range buckets {
		_, err := js.KeyValue(ctx, name)
		switch {
		case errors.Is(err, jetstream.ErrBucketNotFound):
			err = fmt.Errorf("bucket %s: %w", name, ErrStreamMissing)
		case err != nil:
			err = fmt.Errorf("bucket %s: %w", name, err)
		}
		errs = append(errs, err)
	}
	return errs
}
