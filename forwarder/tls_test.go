package forwarder

import (
	"crypto/tls"
	"crypto/x509"
	"slices"
	"testing"

	"github.com/resultgate/resultgate/internal/testutil"
)

func TestMutualTLS(t *testing.T) {
	t.Parallel()
	js := startJS(t)
	ca := testutil.NewCA(t, "test CA")
	srv := ca.Issue(t, "portal-engine", x509.ExtKeyUsageServerAuth, "portal-engine")
	srvCert, srvKey := srv.CertPEM, srv.KeyPEM
	cli := ca.Issue(t, "resultgate", x509.ExtKeyUsageClientAuth)
	cliCert, cliKey := cli.CertPEM, cli.KeyPEM
	pair, err := tls.X509KeyPair(srvCert, srvKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	d := startDownstreamTLS(t, "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{pair}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool,
	}, nil)
	dir := t.TempDir()
	cfg := testConfig(d.addr, "p00")
	cfg.TLS = TLS{
		CAFile:   testutil.WriteFile(t, dir, "ca.pem", ca.PEM),
		CertFile: testutil.WriteFile(t, dir, "client.pem", cliCert), KeyFile: testutil.WriteFile(t, dir, "client.key", cliKey),
		ServerName: "portal-engine",
	}
	f := startForwarder(t, js, cfg)
	ids := publishN(t, js, "p00", 0, 3)
	waitDelivered(t, f, 3)
	if got := d.received(); !slices.Equal(got, ids) {
		t.Errorf("downstream received %v", got)
	}
	d.mu.Lock()
	cn := d.certCN
	d.mu.Unlock()
	if cn != "resultgate" {
		t.Errorf("client certificate CN = %q, want resultgate", cn)
	}
}
