package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/resultgate/resultgate/internal/testutil"
	"github.com/resultgate/resultgate/router/bus"
)

// The subprocess tests run the real binary, as an operator would, so that
// SIGKILL and SIGTERM hit a separate process with its own embedded NATS server
// and file store. The binary is built at most once per test run, and only when a
// test asks for it.
var (
	buildOnce sync.Once
	buildDir  string
	buildBin  string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// resultgateBinary returns the path of a freshly built resultgate binary.
func resultgateBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "resultgate-bin-")
		if buildErr != nil {
			return
		}
		buildBin = filepath.Join(buildDir, "resultgate")
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", "build", "-o", buildBin, ".")
		cmd.Dir = filepath.Join(testutil.RepoRoot(t), "cmd", "resultgate")
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatalf("building resultgate: %v", buildErr)
	}
	return buildBin
}

// startedLine is the part of the "resultgate started" log line the tests use.
type startedLine struct {
	Message    string `json:"message"`
	NATS       string `json:"nats"`
	MLLP       string `json:"mllp"`
	HTTP       string `json:"http"`
	Durability string `json:"durability"`
}

// serveProc is one `resultgate serve` subprocess.
type serveProc struct {
	t       testing.TB
	cmd     *exec.Cmd
	started startedLine
	exited  chan struct{} // closed when the process has been reaped
	waitErr error
	// dataDir is serve's --data (startServe), where its NATS seeds are.
	dataDir string

	mu   sync.Mutex
	logs []string // every stderr line, for failure reports
}

// startServe starts `resultgate serve` on dataDir with loopback listeners on
// free ports and waits (bounded) for its "resultgate started" line. The process
// is killed at the end of the test if it is still running.
func startServe(t testing.TB, dataDir, durability string, extra ...string) *serveProc {
	t.Helper()
	args := []string{"serve", "--data", dataDir,
		"--mllp-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--nats-addr", "127.0.0.1:-1",
		"--log-format", "json", "--durability", durability}
	p := startServeBinary(t, resultgateBinary(t), append(args, extra...))
	p.dataDir = dataDir
	return p
}

// connectNATS connects to p's embedded NATS server as its "service" user
// (every right: the tests inspect and tamper with the streams).
func (p *serveProc) connectNATS(t testing.TB, opts ...nats.Option) *nats.Conn {
	t.Helper()
	creds, err := bus.CredsOption(bus.ServiceCredsFile(p.dataDir))
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(p.started.NATS, append([]nats.Option{nats.Timeout(10 * time.Second), creds}, opts...)...)
	if err != nil {
		t.Fatalf("connecting to %s: %v", p.started.NATS, err)
	}
	return nc
}

// startServeBinary starts bin with args (a serve command line with loopback
// listeners on free ports) and waits, bounded, for its "resultgate started" JSON
// log line. It is startServe for a given binary and command line: the log format
// is whatever args choose (auto is JSON on a pipe, as in a container's log).
func startServeBinary(t testing.TB, bin string, args []string) *serveProc {
	t.Helper()
	p := &serveProc{t: t, cmd: exec.Command(bin, args...), exited: make(chan struct{})}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stdout = io.Discard
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	startedc := make(chan startedLine, 1)
	scanDone := make(chan struct{})
	go func() {
		defer close(scanDone)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.logs = append(p.logs, line)
			p.mu.Unlock()
			var sl startedLine
			if json.Unmarshal([]byte(line), &sl) == nil && sl.Message == "resultgate started" {
				select {
				case startedc <- sl:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	go func() {
		<-scanDone
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("%s log:\n%s", bin, p.log())
		}
	})
	select {
	case p.started = <-startedc:
	case <-p.exited:
		t.Fatalf("%s exited before starting: %v\n%s", bin, p.waitErr, p.log())
	case <-time.After(60 * time.Second):
		t.Fatalf("%s did not start within 60s\n%s", bin, p.log())
	}
	if p.started.MLLP == "" || p.started.HTTP == "" || p.started.NATS == "" {
		t.Fatalf("started line lacks addresses: %+v", p.started)
	}
	return p
}

func (p *serveProc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.logs, "\n")
}

// logLine returns the first stderr line containing s, or "".
func (p *serveProc) logLine(s string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.logs {
		if strings.Contains(l, s) {
			return l
		}
	}
	return ""
}

// signal sends sig and waits up to timeout for the process to exit, returning
// its exit code (-1 when killed by a signal).
func (p *serveProc) signal(sig syscall.Signal, timeout time.Duration) int {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal %v: %v", sig, err)
	}
	return p.wait(timeout)
}

// wait waits up to timeout for the process to exit and returns its exit code
// (-1 when killed by a signal).
func (p *serveProc) wait(timeout time.Duration) int {
	p.t.Helper()
	select {
	case <-p.exited:
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		<-p.exited
		p.t.Fatalf("resultgate serve did not exit within %s\n%s", timeout, p.log())
	}
	var ee *exec.ExitError
	if p.waitErr != nil && !errors.As(p.waitErr, &ee) {
		p.t.Fatalf("waiting for resultgate serve: %v", p.waitErr)
	}
	return p.cmd.ProcessState.ExitCode()
}

// storedControlIDs connects to p's NATS server and counts, by reading
// HL7_IN sequence by sequence, how often each MSH-10 is stored.
func storedControlIDs(t testing.TB, p *serveProc) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	nc := p.connectNATS(t)
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ctx, bus.StreamHL7In)
	if err != nil {
		t.Fatalf("stream %s: %v", bus.StreamHL7In, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatalf("stream info: %v", err)
	}
	got := make(map[string]int, info.State.Msgs)
	if info.State.Msgs == 0 {
		return got
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // an interior delete; HL7_IN never deletes, but do not miscount
		}
		if err != nil {
			t.Fatalf("GetMsg(%d): %v", seq, err)
		}
		got[m.Header.Get(bus.HeaderHL7ControlID)]++
	}
	if n := totalCount(got); n != int(info.State.Msgs) {
		t.Fatalf("read %d messages by sequence, stream state says %d", n, info.State.Msgs)
	}
	return got
}

func totalCount(m map[string]int) int {
	n := 0
	for _, c := range m {
		n += c
	}
	return n
}

// readFixture returns testdata/hl7/name.
func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testutil.RepoRoot(t), "testdata", "hl7", name))
	if err != nil {
		t.Fatal(err)
	}
	return bytes.TrimRight(b, "\r\n")
}
