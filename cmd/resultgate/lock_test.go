package main

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/resultgate/resultgate/app"
)

// Two real serve processes on one data directory: the second exits non-zero at
// once, naming the lock file and the first's PID, and the first keeps serving;
// after the first stops, the directory can be served again (and after a
// SIGKILL too: the operating system releases the lock with the process).
func TestServeRefusesLockedDataDir(t *testing.T) {
	dir := t.TempDir()
	first := startServe(t, dir, "os")
	lockPath := filepath.Join(dir, app.LockFileName)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stderr bytes.Buffer
	second := exec.CommandContext(ctx, resultgateBinary(t), "serve", "--data", dir,
		"--mllp-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--nats-addr", "127.0.0.1:-1",
		"--log-format", "json", "--durability", "os")
	second.Stderr = &stderr
	begin := time.Now()
	err := second.Run()
	took := time.Since(begin)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() <= 0 {
		t.Fatalf("second serve: %v (want a non-zero exit)\n%s", err, stderr.String())
	}
	if took > 10*time.Second {
		t.Errorf("second serve took %s to give up; it must not wait for the lock", took)
	}
	msg := stderr.String()
	for _, want := range []string{lockPath, "process " + strconv.Itoa(first.cmd.Process.Pid), "data directory is in use"} {
		if !strings.Contains(msg, want) {
			t.Errorf("second serve's stderr lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "Stream state outdated") || strings.Contains(msg, "resultgate started") {
		t.Errorf("second serve got as far as the store:\n%s", msg)
	}

	// The first is unharmed.
	resp, err := http.Get("http://" + first.started.HTTP + "/readyz")
	if err != nil {
		t.Fatalf("first serve after the refusal: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("first serve /readyz: %d", resp.StatusCode)
	}

	if code := first.signal(syscall.SIGTERM, 30*time.Second); code != 0 {
		t.Fatalf("first serve exited %d on SIGTERM", code)
	}
	again := startServe(t, dir, "os")
	if code := again.signal(syscall.SIGKILL, 30*time.Second); code != -1 {
		t.Fatalf("SIGKILL: exit code %d", code)
	}
	startServe(t, dir, "os") // a killed holder leaves no stale lock
}
