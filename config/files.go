package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// maxCheckedFile bounds how much of a referenced file CheckFiles reads:
// certificates, keys and token files are kilobytes.
const maxCheckedFile = 4 << 20

// CheckFile reports, as a problem of key, that the file at path does not
// exist, is not a regular file or cannot be read by this process. The
// problem's line is left for Locate to fill in.
func CheckFile(key, path string) *Problem {
	f, err := os.Open(path)
	if err != nil {
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return &Problem{Key: key, Msg: fmt.Sprintf("file %s does not exist", path)}
		case errors.Is(err, fs.ErrPermission):
			return &Problem{Key: key, Msg: fmt.Sprintf("file %s cannot be read by this user", path)}
		}
		return &Problem{Key: key, Msg: fmt.Sprintf("file %s cannot be opened: %v", path, unwrapPath(err))}
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return &Problem{Key: key, Msg: fmt.Sprintf("file %s: %v", path, unwrapPath(err))}
	}
	if !st.Mode().IsRegular() {
		return &Problem{Key: key, Msg: fmt.Sprintf("%s is not a regular file", path)}
	}
	if _, err := f.Read(make([]byte, 1)); err != nil && !errors.Is(err, io.EOF) {
		return &Problem{Key: key, Msg: fmt.Sprintf("file %s cannot be read: %v", path, unwrapPath(err))}
	}
	return nil
}

// unwrapPath drops the *PathError's repetition of the path.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// CheckKeyPair checks the files of a TLS certificate and its key under the
// keys certKey and keyKey: each readable, and together a key pair.
func CheckKeyPair(certKey, certFile, keyKey, keyFile string) Problems {
	var out Problems
	if p := CheckFile(certKey, certFile); p != nil {
		out = append(out, p)
	}
	if p := CheckFile(keyKey, keyFile); p != nil {
		out = append(out, p)
	}
	if len(out) > 0 {
		return out
	}
	if _, err := tls.LoadX509KeyPair(certFile, keyFile); err != nil {
		out = append(out, &Problem{Key: certKey, Msg: fmt.Sprintf("%s and %s are not a usable certificate and key: %v", certFile, keyFile, err)})
	}
	return out
}

// CheckCAFile checks a CA bundle under key: readable and holding at least one
// PEM certificate.
func CheckCAFile(key, path string) *Problem {
	if p := CheckFile(key, path); p != nil {
		return p
	}
	b, err := readLimited(path)
	if err != nil {
		return &Problem{Key: key, Msg: err.Error()}
	}
	if !x509.NewCertPool().AppendCertsFromPEM(b) {
		return &Problem{Key: key, Msg: fmt.Sprintf("%s holds no PEM certificate", path)}
	}
	return nil
}

func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("file %s: %w", path, unwrapPath(err))
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxCheckedFile+1))
	if err != nil {
		return nil, fmt.Errorf("file %s: %w", path, unwrapPath(err))
	}
	if len(b) > maxCheckedFile {
		return nil, fmt.Errorf("file %s is larger than %d bytes", path, maxCheckedFile)
	}
	return b, nil
}

// CheckFiles checks that the files the core sections name exist and are
// readable: TLS certificates, keys and CA bundles (as key pairs and PEM), the
// NATS credentials and TLS files, and the partition key file. It reports
// what serve would otherwise fail on at start, or later.
func (c Config) CheckFiles() Problems {
	var out Problems
	add := func(p *Problem) {
		if p != nil {
			out = append(out, p)
		}
	}
	for _, t := range []struct {
		key string
		tls TLS
	}{{"mllp.tls", c.MLLP.TLS}, {"http.tls", c.HTTP.TLS}} {
		if t.tls.CertFile != "" && t.tls.KeyFile != "" {
			out = append(out, CheckKeyPair(t.key+".cert_file", t.tls.CertFile, t.key+".key_file", t.tls.KeyFile)...)
		}
		if t.tls.ClientCAFile != "" {
			add(CheckCAFile(t.key+".client_ca_file", t.tls.ClientCAFile))
		}
	}
	if c.NATS.URL != "" {
		if c.NATS.CredsFile != "" {
			add(CheckFile("nats.creds_file", c.NATS.CredsFile))
		}
		if c.NATS.CAFile != "" {
			add(CheckCAFile("nats.ca_file", c.NATS.CAFile))
		}
		if c.NATS.CertFile != "" && c.NATS.KeyFile != "" {
			out = append(out, CheckKeyPair("nats.cert_file", c.NATS.CertFile, "nats.key_file", c.NATS.KeyFile)...)
		}
	}
	if c.Intake.PartitionKeyFile != "" {
		add(CheckFile("intake.partition_key_file", c.Intake.PartitionKeyFile))
	}
	for _, p := range out {
		p.Line = c.LineOf(p.Key)
	}
	return out
}
