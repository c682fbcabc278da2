package app

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// LockFileName is the file in the data directory that `serve` locks for as
// long as its embedded NATS server may write there. It holds the PID of the
// process that holds the lock. The file is never removed: removing it would
// let a process that opened it just before lock a file no other process sees.
const LockFileName = "resultgate.lock"

// ErrDataDirLocked is wrapped by the error Start returns when another process
// holds the data directory's lock: two embedded NATS servers on one store
// corrupt each other's stream state.
var ErrDataDirLocked = errors.New("data directory is in use by another process")

// LockedError says which lock file is held and by which process.
type LockedError struct {
	// Path is the lock file.
	Path string
	// PID is the holder's process ID as it wrote it in the file; 0 when the
	// file holds none (the holder had locked it but not yet written its PID).
	PID int
}

func (e *LockedError) Error() string {
	holder := "another process (its PID is not yet written)"
	if e.PID > 0 {
		holder = "process " + strconv.Itoa(e.PID)
	}
	return fmt.Sprintf("%s: lock file %s is held by %s; stop that resultgate serve or give this one another --data directory",
		ErrDataDirLocked, e.Path, holder)
}

func (e *LockedError) Unwrap() error { return ErrDataDirLocked }

// dirLock is a held data-directory lock.
type dirLock struct {
	f *os.File
}

// lockDataDir takes the exclusive lock on dir's LockFileName without waiting
// and writes this process's PID into it. The lock is an advisory lock on the
// open file (flock on Unix, LockFileEx on Windows), so the operating system
// releases it when the process ends, however it ends: a crashed serve leaves no
// stale lock behind.
func lockDataDir(dir string) (*dirLock, error) {
	path := filepath.Join(dir, LockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("opening lock file: %w", err)
	}
	held, err := tryLock(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	if held {
		pid := readPID(f)
		f.Close()
		return nil, &LockedError{Path: path, PID: pid}
	}
	pid := []byte(strconv.Itoa(os.Getpid()) + "\n")
	if err := f.Truncate(0); err != nil {
		f.Close()
		return nil, fmt.Errorf("writing lock file %s: %w", path, err)
	}
	if _, err := f.WriteAt(pid, 0); err != nil {
		f.Close()
		return nil, fmt.Errorf("writing lock file %s: %w", path, err)
	}
	return &dirLock{f: f}, nil
}

// readPID returns the PID written in the lock file, or 0.
func readPID(f *os.File) int {
	buf := make([]byte, 32)
	n, _ := f.ReadAt(buf, 0)
	pid, err := strconv.Atoi(string(bytes.TrimSpace(buf[:n])))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

// release empties the lock file (the PID in it is no longer running serve) and
// releases the lock by closing it. It is idempotent.
func (l *dirLock) release() error {
	if l == nil || l.f == nil {
		return nil
	}
	terr := l.f.Truncate(0)
	cerr := l.f.Close()
	l.f = nil
	if err := errors.Join(terr, cerr); err != nil {
		return fmt.Errorf("releasing data directory lock: %w", err)
	}
	return nil
}
