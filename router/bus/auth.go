package bus

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// ErrCredsPermissions is returned when a credentials file of the embedded
// server is readable or writable by anyone but its owner: a key another local
// user could have read is not a secret, so resultgate refuses to start with it.
var ErrCredsPermissions = errors.New("credentials file is accessible to other users (want mode 0600)")

// The NKey seed files of the embedded server, in DATA_DIR/nats (mode 0700),
// each mode 0600. They are created at the first start that listens on a port.
const (
	// ServiceSeedFile is the NKey seed of user "service": every right in the
	// account. resultgate serve uses it (in-process), and so do `resultgate
	// audit init` and an administrator's own tools.
	ServiceSeedFile = "service.nk"
	// OperatorSeedFile is the NKey seed of user "operator": the request/reply
	// API (resultgate.api.>) and reading the audit trail and its checkpoints;
	// no stream or consumer management. The operator commands (holds, consent,
	// dead, audit, releases, determinations) load it by default.
	OperatorSeedFile = "operator.nk"
)

// CredsDir returns the directory of the embedded server's seed files.
func CredsDir(dataDir string) string { return filepath.Join(dataDir, "nats") }

// ServiceCredsFile returns the path of the service seed under dataDir.
func ServiceCredsFile(dataDir string) string {
	return filepath.Join(CredsDir(dataDir), ServiceSeedFile)
}

// OperatorCredsFile returns the path of the operator seed under dataDir.
func OperatorCredsFile(dataDir string) string {
	return filepath.Join(CredsDir(dataDir), OperatorSeedFile)
}

// operatorPermissions are the rights of user "operator" on the embedded
// server: call the API, and read (never change) AUDIT and the checkpoints
// with ordered consumers, as `resultgate audit verify` does, and the parked
// notifications (`resultgate notify failures`). No
// $JS.API.STREAM.UPDATE, DELETE, PURGE or MSG.DELETE of any stream.
var operatorPermissions = &server.Permissions{
	Publish: &server.SubjectPermission{Allow: []string{
		SubjectAPIPrefix + ">",
		"$JS.API.INFO",
		"$JS.API.STREAM.INFO.*",
		"$JS.API.STREAM.MSG.GET." + StreamAudit,
		"$JS.API.STREAM.MSG.GET.KV_" + KVAuditCheckpoints,
		"$JS.API.DIRECT.GET.KV_" + KVAuditCheckpoints + ".>",
		"$JS.API.CONSUMER.CREATE." + StreamAudit + ".>",
		"$JS.API.CONSUMER.INFO." + StreamAudit + ".*",
		"$JS.API.CONSUMER.MSG.NEXT." + StreamAudit + ".*",
		"$JS.API.CONSUMER.DELETE." + StreamAudit + ".*",
		"$JS.API.CONSUMER.CREATE.KV_" + KVAuditCheckpoints + ".>",
		"$JS.API.CONSUMER.DELETE.KV_" + KVAuditCheckpoints + ".*",
		"$JS.FC." + StreamAudit + ".>",
		"$JS.FC.KV_" + KVAuditCheckpoints + ".>",
		"$JS.API.STREAM.MSG.GET.KV_" + KVNotifyFailures,
		"$JS.API.DIRECT.GET.KV_" + KVNotifyFailures + ".>",
		"$JS.API.CONSUMER.CREATE.KV_" + KVNotifyFailures + ".>",
		"$JS.API.CONSUMER.INFO.KV_" + KVNotifyFailures + ".*",
		"$JS.API.CONSUMER.MSG.NEXT.KV_" + KVNotifyFailures + ".*",
		"$JS.API.CONSUMER.DELETE.KV_" + KVNotifyFailures + ".*",
		"$JS.FC.KV_" + KVNotifyFailures + ".>",
	}},
	Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.>"}},
}

// EmbeddedUsers returns the users of the embedded server: "service" and
// "operator", identified by the public keys of the seeds in dataDir's
// credentials directory. It creates the directory (mode 0700) and the seeds
// (mode 0600) when they do not exist, tightens the directory to 0700, and
// fails with ErrCredsPermissions when a seed is open to other users.
func EmbeddedUsers(dataDir string) ([]*server.NkeyUser, error) {
	dir := CredsDir(dataDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating %s: %w", dir, err)
	}
	// The JetStream store lives here too; nobody else needs to enter it.
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("restricting %s: %w", dir, err)
	}
	svc, err := ensureSeed(ServiceCredsFile(dataDir))
	if err != nil {
		return nil, err
	}
	op, err := ensureSeed(OperatorCredsFile(dataDir))
	if err != nil {
		return nil, err
	}
	return []*server.NkeyUser{
		{Nkey: svc},
		{Nkey: op, Permissions: operatorPermissions},
	}, nil
}

// ensureSeed returns the public key of the user seed at path, creating the
// file with a new seed when it does not exist.
func ensureSeed(path string) (string, error) {
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		kp, err := nkeys.CreateUser()
		if err != nil {
			return "", fmt.Errorf("generating %s: %w", path, err)
		}
		seed, err := kp.Seed()
		if err != nil {
			return "", fmt.Errorf("generating %s: %w", path, err)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return "", fmt.Errorf("creating %s: %w", path, err)
		}
		_, werr := f.Write(append(seed, '\n'))
		if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
			return "", fmt.Errorf("writing %s: %w", path, err)
		}
		return kp.PublicKey()
	case err != nil:
		return "", fmt.Errorf("reading %s: %w", path, err)
	}
	if err := CheckCredsMode(path, st); err != nil {
		return "", err
	}
	kp, err := seedFile(path)
	if err != nil {
		return "", err
	}
	return kp.PublicKey()
}

// CheckCredsMode fails with ErrCredsPermissions when the file at path (whose
// FileInfo is st) grants any right to its group or to others.
func CheckCredsMode(path string, st fs.FileInfo) error {
	if st.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("%s has mode %04o: %w; fix it with chmod 600 %s", path, st.Mode().Perm(), ErrCredsPermissions, path)
	}
	return nil
}

// seedFile reads the user NKey seed in path.
func seedFile(path string) (nkeys.KeyPair, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	kp, err := nkeys.ParseDecoratedNKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s: not an NKey seed: %w", path, err)
	}
	return kp, nil
}

// CredsOption returns the client option for a credentials file: a JWT
// credentials file (operator mode clusters) or a bare NKey seed (the embedded
// server's DATA_DIR/nats/*.nk). A seed file open to other users is refused.
func CredsOption(path string) (nats.Option, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading NATS credentials: %w", err)
	}
	if bytes.Contains(b, []byte("BEGIN NATS USER JWT")) {
		return nats.UserCredentials(path), nil
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("reading NATS credentials: %w", err)
	}
	if err := CheckCredsMode(path, st); err != nil {
		return nil, err
	}
	opt, err := nats.NkeyOptionFromSeed(path)
	if err != nil {
		return nil, fmt.Errorf("NATS credentials %s: %w", path, err)
	}
	return opt, nil
}
