// Package bus is resultgate's NATS layer: the embedded server (single-machine
// default) and the client connection, the streams and key-value buckets and
// their configuration, the health checks, and in wire.go the wire contract:
// every stream, bucket, subject and header name that operators, portals and
// interface engines integrate against.
//
// It may import nats-server, nats.go and zerolog, nothing of resultgate's: the
// other router packages (intake, pipeline, api) build on it.
//
// Durability, as promised by an AA/CA from the intake:
//
//   - durability "fsync" (the default for the embedded server): the server runs
//     with JetStream sync_interval "always"; every stored message is written and
//     fsynced to the data directory before the PubAck, so an AA means the message
//     is on disk and survives a crash of the process, the OS or the power.
//   - durability "os": JetStream's default flushing (data written to the OS page
//     cache at once, fsynced every two minutes); an AA survives a crash of the
//     process but a power loss or kernel crash of the single node may lose the
//     last unsynced writes.
//   - cluster mode (--nats-url with Replicas 3): an AA means the message is stored
//     on a quorum (2 of 3) of replicas; losing one node loses nothing.
//
// Authentication (auth.go): an embedded server that listens on a port admits
// only two NKey users whose seeds it keeps in DATA_DIR/nats (mode 0600):
// "service" (serve itself, in-process; every right) and "operator" (the
// request/reply API and read-only access to AUDIT). AUDIT and its checkpoint
// bucket are created only when absent and never updated by EnsureStreams
// (streams.go), so serve needs no right to change them.
package bus
