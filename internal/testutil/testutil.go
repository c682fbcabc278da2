// Package testutil holds helpers shared by resultgate's tests: locating the shared
// HL7 corpus beside the checkout, and telling a skipped prerequisite apart from a
// failure when running under CI.
package testutil

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// RepoRoot returns the directory holding go.mod, found by walking up from the
// working directory (a test's working directory is its package directory).
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("getwd: %v", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// CorpusDir returns ../shared/corpus beside the checkout, or skips the test when it
// is absent (it is public data written by others and is not part of the repo).
// RESULTGATE_CORPUS overrides the location.
func CorpusDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("RESULTGATE_CORPUS")
	if dir == "" {
		dir = filepath.Join(RepoRoot(t), "..", "shared", "corpus")
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		t.Skipf("shared HL7 corpus not found at %s; skipping corpus test", dir)
	}
	return dir
}

// InCI reports whether the tests run under CI (CI=true), where a missing
// prerequisite that .ci/run installs is a failure, not a skip.
func InCI() bool { return os.Getenv("CI") == "true" }

// Require skips the test with reason when ok is false, or fails it under CI.
func Require(t testing.TB, ok bool, reason string) {
	t.Helper()
	if ok {
		return
	}
	if InCI() {
		t.Fatalf("prerequisite missing under CI: %s", reason)
	}
	t.Skipf("prerequisite missing: %s", reason)
}

// Eventually polls cond every 5ms until it returns true or timeout passes, and
// fails the test with msg otherwise. Use it instead of time.Sleep to wait for
// asynchronous effects.
func Eventually(t testing.TB, timeout time.Duration, msg string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for: %s", timeout, msg)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
