package bus_test

import (
	"crypto/tls"
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/resultgate/resultgate/internal/testutil"
	"github.com/resultgate/resultgate/router/bus"
	"github.com/rs/zerolog"
)

// testPKI is a CA with a server certificate for 127.0.0.1 and a client
// certificate, written as PEM files under a temporary directory.
type testPKI struct {
	caFile, serverCert, serverKey, clientCert, clientKey string
	pool                                                 *x509.CertPool
	serverPair                                           tls.Certificate
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	ca := testutil.NewCA(t, "resultgate test CA")
	srv := ca.Issue(t, "nats-server", x509.ExtKeyUsageServerAuth)
	cli := ca.Issue(t, "resultgate-client", x509.ExtKeyUsageClientAuth)
	return &testPKI{
		caFile: ca.File(t), serverCert: srv.CertFile, serverKey: srv.KeyFile,
		clientCert: cli.CertFile, clientKey: cli.KeyFile, pool: ca.Pool, serverPair: srv.Pair,
	}
}

// TestConnectTLS connects to an external (not embedded) JetStream server that
// requires mutual TLS, as with --nats-url and the CA/cert options.
func TestConnectTLS(t *testing.T) {
	pki := newTestPKI(t)
	srv, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true,
		JetStream: true, StoreDir: t.TempDir(),
		TLS: true, TLSVerify: true, TLSTimeout: 5,
		TLSConfig: &tls.Config{
			Certificates: []tls.Certificate{pki.serverPair}, ClientCAs: pki.pool,
			ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("TLS server not ready")
	}
	url := "tls://" + srv.Addr().String()

	nc, err := bus.Connect(testutil.Ctx(t), bus.ConnConfig{URL: url, CAFile: pki.caFile, CertFile: pki.clientCert, KeyFile: pki.clientKey, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatalf("Connect with mutual TLS: %v", err)
	}
	defer nc.Close()
	if !nc.TLSRequired() {
		t.Error("connection is not TLS")
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.EnsureStreams(testutil.Ctx(t), js, bus.StreamsConfig{}); err != nil {
		t.Fatalf("EnsureStreams over TLS: %v", err)
	}
	if err := bus.Ready(testutil.Ctx(t), js); err != nil {
		t.Fatalf("Ready over TLS: %v", err)
	}

	// Without the client certificate the server refuses the connection.
	if nc2, err := bus.Connect(testutil.Ctx(t), bus.ConnConfig{URL: url, CAFile: pki.caFile}); err == nil {
		nc2.Close()
		t.Fatal("Connect without a client certificate succeeded")
	}
	// Without the CA the server's certificate is not trusted.
	if nc3, err := bus.Connect(testutil.Ctx(t), bus.ConnConfig{URL: url, CertFile: pki.clientCert, KeyFile: pki.clientKey}); err == nil {
		nc3.Close()
		t.Fatal("Connect without the CA succeeded")
	} else if !strings.Contains(err.Error(), "connecting to NATS") {
		t.Errorf("error not wrapped: %v", err)
	}
}

// TestEnsureStreamsReplicasOnSingleNode: R3 asked of a single server fails,
// naming the stream, rather than silently storing one copy.
func TestEnsureStreamsReplicasOnSingleNode(t *testing.T) {
	tj := testutil.StartJS(t, "os")
	err := bus.EnsureStreams(testutil.Ctx(t), tj.JS, bus.StreamsConfig{Replicas: 3})
	if err == nil {
		t.Fatal("EnsureStreams with 3 replicas on one server succeeded")
	}
	if !strings.Contains(err.Error(), "ensuring stream HL7_IN") {
		t.Errorf("error does not name the stream: %v", err)
	}
}
