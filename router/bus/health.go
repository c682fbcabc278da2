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
	nc := js.Conn()
	if nc == nil || !nc.IsConnected() {
		return ErrNotConnected
	}
	if _, err := js.AccountInfo(ctx); err != nil {
		return fmt.Errorf("JetStream account info: %w", err)
	}
	for _, cfg := range StreamConfigs(StreamsConfig{}) {
		if _, err := js.Stream(ctx, cfg.Name); err != nil {
			if errors.Is(err, jetstream.ErrStreamNotFound) {
				return fmt.Errorf("stream %s: %w", cfg.Name, ErrStreamMissing)
			}
			return fmt.Errorf("stream %s: %w", cfg.Name, err)
		}
	}
	for _, cfg := range BucketConfigs(StreamsConfig{}) {
		if _, err := js.KeyValue(ctx, cfg.Bucket); err != nil {
			if errors.Is(err, jetstream.ErrBucketNotFound) {
				return fmt.Errorf("bucket %s: %w", cfg.Bucket, ErrStreamMissing)
			}
			return fmt.Errorf("bucket %s: %w", cfg.Bucket, err)
		}
	}
	return nil
}
