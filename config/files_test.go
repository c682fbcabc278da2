package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// writeKeyPair writes a fresh self-signed certificate and its key under dir
// and returns their paths.
func writeKeyPair(t *testing.T, dir, name string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func TestCheckFiles(t *testing.T) {
	dir := t.TempDir()
	cert, key := writeKeyPair(t, dir, "server")
	_, otherKey := writeKeyPair(t, dir, "other")
	notPEM := filepath.Join(dir, "ca.txt")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")

	cfg, err := Parse([]byte(`mllp:
  tls:
    cert_file: ` + cert + `
    key_file: ` + key + `
    client_ca_file: ` + cert + `
http:
  tls:
    cert_file: ` + cert + `
    key_file: ` + otherKey + `
    client_ca_file: ` + notPEM + `
intake:
  partition_key_file: ` + dir + `
`))
	if err != nil {
		t.Fatal(err)
	}
	got := cfg.CheckFiles().Error()
	want := "line 8: http.tls.cert_file: " + cert + " and " + otherKey + " are not a usable certificate and key: tls: private key does not match public key\n" +
		"line 10: http.tls.client_ca_file: " + notPEM + " holds no PEM certificate\n" +
		"line 12: intake.partition_key_file: " + dir + " is not a regular file"
	if got != want {
		t.Errorf("CheckFiles =\n%s\nwant\n%s", got, want)
	}

	cfg = Default()
	cfg.MLLP.TLS = TLS{CertFile: missing, KeyFile: key, ClientCAFile: missing}
	cfg.NATS = NATS{URL: "nats://127.0.0.1:4222", CredsFile: missing, Replicas: 1}
	got = cfg.CheckFiles().Error()
	want = "mllp.tls.cert_file: file " + missing + " does not exist\n" +
		"mllp.tls.client_ca_file: file " + missing + " does not exist\n" +
		"nats.creds_file: file " + missing + " does not exist"
	if got != want {
		t.Errorf("CheckFiles =\n%s\nwant\n%s", got, want)
	}

	// The embedded server ignores the NATS client files: nothing to check.
	cfg = Default()
	cfg.NATS.CredsFile = missing
	if ps := cfg.CheckFiles(); len(ps) != 0 {
		t.Errorf("CheckFiles with the embedded server = %v", ps)
	}
}
