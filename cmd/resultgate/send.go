package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"

	"github.com/resultgate/resultgate/hl7"
	"github.com/resultgate/resultgate/hl7/mllp"
	"github.com/resultgate/resultgate/internal/loadgen"
)

// tlsFlags are the client TLS options shared by send and bench.
type tlsFlags struct {
	enabled            bool
	caFile             string
	certFile, keyFile  string
	serverName         string
	insecureSkipVerify bool
}

func (f *tlsFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.BoolVar(&f.enabled, "tls", false, "connect with TLS (1.2 or later)")
	fl.StringVar(&f.caFile, "tls-ca", "", "PEM file of CAs that sign the server certificate (implies --tls)")
	fl.StringVar(&f.certFile, "tls-cert", "", "client certificate PEM for mutual TLS (implies --tls)")
	fl.StringVar(&f.keyFile, "tls-key", "", "client key PEM for mutual TLS")
	fl.StringVar(&f.serverName, "tls-server-name", "", "server name to verify (default: the host of --addr)")
	fl.BoolVar(&f.insecureSkipVerify, "tls-insecure-skip-verify", false, "do not verify the server certificate (testing only)")
}

func (f *tlsFlags) config() (*tls.Config, error) {
	if !f.enabled && f.caFile == "" && f.certFile == "" {
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: f.serverName, InsecureSkipVerify: f.insecureSkipVerify} //nolint:gosec // opt-in flag for testing
	if f.caFile != "" {
		pem, err := os.ReadFile(f.caFile)
		if err != nil {
			return nil, fmt.Errorf("--tls-ca: %w", err)
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--tls-ca: no PEM certificates in %s", f.caFile)
		}
	}
	if f.certFile != "" || f.keyFile != "" {
		cert, err := tls.LoadX509KeyPair(f.certFile, f.keyFile)
		if err != nil {
			return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// readMessages reads every HL7 message from the files named (a directory's
// regular files in name order; "-" is standard input), splitting batches, files
// and back-to-back messages. A file named on the command line that holds no
// HL7 message is an error; a file found in a directory that holds none (a
// README, a checksum list) is skipped with a line on warn.
func readMessages(stdin io.Reader, warn io.Writer, args []string) ([][]byte, error) {
	var files []string
	inDir := map[string]bool{}
	for _, a := range args {
		if a == "-" {
			files = append(files, a)
			continue
		}
		st, err := os.Stat(a)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			files = append(files, a)
			continue
		}
		entries, err := os.ReadDir(a)
		if err != nil {
			return nil, err
		}
		var names []string
		for _, e := range entries {
			if e.Type().IsRegular() && !strings.HasPrefix(e.Name(), ".") {
				names = append(names, filepath.Join(a, e.Name()))
			}
		}
		sort.Strings(names)
		for _, n := range names {
			inDir[n] = true
		}
		files = append(files, names...)
	}
	var msgs [][]byte
	for _, f := range files {
		var data []byte
		var err error
		if f == "-" {
			data, err = io.ReadAll(stdin)
		} else {
			data, err = os.ReadFile(f)
		}
		if err != nil {
			return nil, err
		}
		split, err := hl7.SplitMessages(data)
		if err == nil && len(split) == 0 {
			err = errors.New("no HL7 message found")
		}
		if err != nil && inDir[f] && !looksLikeHL7(data) {
			fmt.Fprintf(warn, "skipping %s: not an HL7 file (%v)\n", f, err)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		msgs = append(msgs, split...)
	}
	return msgs, nil
}

func newSendCmd() *cobra.Command {
	var (
		addr       string
		ackTimeout time.Duration
		tf         tlsFlags
		quiet      bool
		pol        resendPolicy
	)
	cmd := &cobra.Command{
		Use:   "send --addr HOST:PORT FILE|DIR|- ...",
		Short: "Send HL7 messages over MLLP, wait for each ACK, resend when asked, and summarise",
		Long: `send reads every message from the files given (a directory's files in name order;
batches, files and back-to-back messages are split), sends each over one MLLP
connection, waits for its ACK and prints a summary, as an interface engine would:

  - a message answered AE/CE ("not stored, please resend", as during a NATS leader
    election) is resent after --retry-wait, doubling each time up to 30s, at most
    --retries times;
  - a message whose connection is lost, or whose ACK does not come within
    --ack-timeout, is resent on a new connection (the receiver stores a resend
    once), reconnecting with the same back-off;
  - when no message has been acknowledged (or definitively rejected, AR/CR) for
    --timeout, send gives up: it prints how many messages were sent, acknowledged
    and not sent, and exits with status 1.

The first connection is tried once, so a wrong address fails at once. send exits
with status 1 when any message was not positively acknowledged (AA or CA).`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if pol.timeout <= 0 || pol.wait <= 0 || pol.retries < 0 {
				return &exitError{code: 2, err: errors.New("--timeout and --retry-wait must be positive and --retries at least 0")}
			}
			tc, err := tf.config()
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			msgs, err := readMessages(cmd.InOrStdin(), cmd.ErrOrStderr(), args)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			ctx := cmd.Context()
			s := &sender{
				cfg: mllp.ClientConfig{Addr: addr, TLS: tc, AckTimeout: ackTimeout, DialTimeout: 10 * time.Second},
				pol: pol, errw: cmd.ErrOrStderr(), quiet: quiet,
			}
			if s.cl, err = mllp.Dial(ctx, s.cfg); err != nil {
				return &exitError{code: 1, err: fmt.Errorf("connecting to %s: %w", addr, err)}
			}
			defer s.close()
			s.progressAt = time.Now()
			out, errw := cmd.OutOrStdout(), cmd.ErrOrStderr()
			progress := !quiet && len(msgs) > 20 && isTerminal(errw)
			sum := sendSummary{total: len(msgs)}
			var stop error
			for i, m := range msgs {
				if ctx.Err() != nil {
					stop = errors.New("interrupted")
					break
				}
				res, err := s.sendOne(ctx, i+1, m)
				sum.add(res)
				if err != nil {
					stop = err
					break
				}
				if progress && (i+1)%100 == 0 {
					fmt.Fprintf(errw, "\r%d/%d sent", i+1, len(msgs))
				}
			}
			if progress {
				fmt.Fprintln(errw)
			}
			fmt.Fprintln(out, sum.String())
			if stop != nil {
				return &exitError{code: 1, err: fmt.Errorf("%w; %d message(s) not sent", stop, sum.total-sum.sent)}
			}
			if sum.acknowledged() != sum.total {
				return &exitError{code: 1, err: errors.New("not every message was positively acknowledged")}
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&addr, "addr", "127.0.0.1:2575", "MLLP address of the receiver")
	fl.DurationVar(&ackTimeout, "ack-timeout", 30*time.Second, "how long to wait for each ACK before resending on a new connection")
	fl.DurationVar(&pol.timeout, "timeout", time.Minute, "give up when no message has been acknowledged (or rejected) for this long")
	fl.IntVar(&pol.retries, "retries", 5, "how many times to resend a message answered AE/CE before counting it as failed")
	fl.DurationVar(&pol.wait, "retry-wait", time.Second, "wait before the first resend or reconnect; it doubles with each further one, up to 30s")
	fl.BoolVarP(&quiet, "quiet", "q", false, "print only the summary")
	tf.register(cmd)
	return cmd
}

// noAckWait is how long send waits for an error ACK to a message whose MSH-15
// asks for no accept ACK on success (NE, ER).
const noAckWait = 2 * time.Second

// maxRetryWait caps the doubling back-off between resends and reconnects: a
// receiver that restarts or elects a leader is back within seconds, and a
// longer wait only delays the messages behind.
const maxRetryWait = 30 * time.Second

// noAckRequested reports whether msg's MSH-15 asks for no accept ACK on success.
func noAckRequested(msg []byte) bool {
	m, err := hl7.Parse(msg)
	if err != nil {
		return false
	}
	mode := m.MSH().AcceptAckType
	return mode == "NE" || mode == "ER"
}

// resendPolicy bounds what send does when a message is not acknowledged.
type resendPolicy struct {
	// timeout is the longest send goes without progress (a message
	// acknowledged or definitively rejected) before it gives up.
	timeout time.Duration
	// retries is how often a message answered AE/CE is resent.
	retries int
	// wait is the first back-off; it doubles up to maxRetryWait.
	wait time.Duration
}

// backoff returns the wait before the n-th resend or reconnect (n >= 1).
func (p resendPolicy) backoff(n int) time.Duration {
	d := p.wait
	for i := 1; i < n && d < maxRetryWait; i++ {
		d *= 2
	}
	return min(d, max(maxRetryWait, p.wait))
}

// outcome is what became of one message.
type outcome int

const (
	outNone     outcome = iota // not tried
	outPositive                // AA/CA
	outNoAck                   // MSH-15 NE/ER and no error ACK came
	outError                   // AE/CE, resends exhausted
	outReject                  // AR/CR
	outTimeout                 // no ACK within --ack-timeout, then gave up
	outFailure                 // connection lost or an unreadable ACK, then gave up
)

// msgResult is one message's outcome, whether it was ever written to the
// receiver, and how often it was resent.
type msgResult struct {
	outcome outcome
	written bool
	resends int
}

// sender sends messages one at a time over one MLLP connection, which it
// replaces when it is lost.
type sender struct {
	cfg   mllp.ClientConfig
	pol   resendPolicy
	errw  io.Writer
	quiet bool

	cl         *mllp.Client // nil after a failure, until the next connect
	progressAt time.Time    // the last message acknowledged or rejected (or the start)
}

func (s *sender) close() {
	if s.cl != nil {
		_ = s.cl.Close()
		s.cl = nil
	}
}

func (s *sender) logf(format string, args ...any) {
	if !s.quiet {
		fmt.Fprintf(s.errw, format+"\n", args...)
	}
}

// deadline is when send gives up unless a message makes progress first.
func (s *sender) deadline() time.Time { return s.progressAt.Add(s.pol.timeout) }

// gaveUp is the error that ends the run when the deadline passes.
func (s *sender) gaveUp(last error) error {
	return fmt.Errorf("gave up: nothing acknowledged for %s (last error: %w)", s.pol.timeout, last)
}

// sleep waits d, or until the deadline if that is sooner; it reports false
// when the deadline has passed or ctx ended.
func (s *sender) sleep(ctx context.Context, d time.Duration) bool {
	d = min(d, time.Until(s.deadline()))
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
	return ctx.Err() == nil && time.Now().Before(s.deadline())
}

// connect dials until a connection is made, waiting out the back-off between
// attempts, or until the deadline passes or ctx ends.
func (s *sender) connect(ctx context.Context) error {
	for n := 1; ; n++ {
		dctx, cancel := context.WithDeadline(ctx, s.deadline())
		cl, err := mllp.Dial(dctx, s.cfg)
		cancel()
		if err == nil {
			s.cl = cl
			return nil
		}
		if ctx.Err() != nil {
			return errors.New("interrupted")
		}
		wait := s.pol.backoff(n)
		if !time.Now().Add(wait).Before(s.deadline()) {
			return s.gaveUp(err)
		}
		s.logf("reconnecting to %s (attempt %d failed: %v); next attempt in %s", s.cfg.Addr, n, err, wait)
		if !s.sleep(ctx, wait) {
			if ctx.Err() != nil {
				return errors.New("interrupted")
			}
			return s.gaveUp(err)
		}
	}
}

// sendOne sends message i until it is acknowledged, rejected, answered AE/CE
// more than the retries allow, or send gives up. A non-nil error ends the run
// (the deadline passed or ctx ended); res is the message's outcome so far.
func (s *sender) sendOne(ctx context.Context, i int, m []byte) (res msgResult, stop error) {
	noAck := noAckRequested(m)
	negatives := 0
	var last error
	for {
		if s.cl == nil {
			if err := s.connect(ctx); err != nil {
				return res, err
			}
		}
		sctx, cancel := context.WithDeadline(ctx, s.deadline())
		if noAck {
			// MSH-15 NE/ER: a stored message gets no accept ACK; wait
			// briefly for an error ACK only.
			cancel()
			sctx, cancel = context.WithDeadline(ctx, earliest(s.deadline(), time.Now().Add(noAckWait)))
		}
		ack, err := s.cl.Send(sctx, m)
		cancel()
		if errors.Is(err, mllp.ErrFramingByte) {
			s.logf("message %d: %v", i, err)
			res.outcome = outFailure
			return res, nil
		}
		res.written = true
		if err != nil {
			s.close() // a late ACK must not be taken for the next message's
			switch {
			case ctx.Err() != nil:
				return res, errors.New("interrupted")
			case noAck && errors.Is(err, context.DeadlineExceeded) && time.Now().Before(s.deadline()):
				res.outcome = outNoAck
				s.progressAt = time.Now()
				return res, nil
			case errors.Is(err, mllp.ErrAckTimeout):
				res.outcome = outTimeout
			default:
				res.outcome = outFailure
			}
			last = err
			if !time.Now().Before(s.deadline()) {
				return res, s.gaveUp(last)
			}
			s.logf("message %d: %v; resending", i, err)
			res.resends++
			continue
		}
		switch code := loadgen.AckCode(ack); code {
		case "AA", "CA":
			res.outcome = outPositive
			s.progressAt = time.Now()
			return res, nil
		case "AR", "CR":
			s.logf("message %d: %s%s", i, code, ackReason(ack))
			res.outcome = outReject
			s.progressAt = time.Now()
			return res, nil
		case "AE", "CE":
			res.outcome = outError
			negatives++
			if negatives > s.pol.retries {
				s.logf("message %d: %s%s; not resent (--retries %d)", i, code, ackReason(ack), s.pol.retries)
				return res, nil
			}
			wait := s.pol.backoff(negatives)
			last = fmt.Errorf("%s%s", code, ackReason(ack))
			s.logf("message %d: %v; resending in %s (resend %d of %d)", i, last, wait, negatives, s.pol.retries)
			if !s.sleep(ctx, wait) {
				if ctx.Err() != nil {
					return res, errors.New("interrupted")
				}
				return res, s.gaveUp(last)
			}
			res.resends++
		default:
			s.logf("message %d: unexpected acknowledgement code %q", i, code)
			res.outcome = outFailure
			s.progressAt = time.Now()
			return res, nil
		}
	}
}

func earliest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// sendSummary counts what became of the messages.
type sendSummary struct {
	total, sent, resends                                 int
	positive, errors, rejects, timeouts, failures, noAck int
}

func (s *sendSummary) add(r msgResult) {
	if r.written {
		s.sent++
	}
	s.resends += r.resends
	switch r.outcome {
	case outPositive:
		s.positive++
	case outNoAck:
		s.noAck++
	case outError:
		s.errors++
	case outReject:
		s.rejects++
	case outTimeout:
		s.timeouts++
	case outFailure:
		s.failures++
	}
}

// acknowledged counts the messages the receiver took: AA/CA, or no error ACK
// where MSH-15 asked for none on success.
func (s sendSummary) acknowledged() int { return s.positive + s.noAck }

func (s sendSummary) String() string {
	str := fmt.Sprintf("sent %d of %d, acknowledged %d, not sent %d: AA/CA %d, AE/CE %d, AR/CR %d, timeouts %d, other failures %d, resends %d",
		s.sent, s.total, s.acknowledged(), s.total-s.sent, s.positive, s.errors, s.rejects, s.timeouts, s.failures, s.resends)
	if s.noAck > 0 {
		str += fmt.Sprintf(", no ACK requested (MSH-15 NE/ER) %d", s.noAck)
	}
	return str
}

// ackReason returns ": <text>" from a negative ACK, when it has one: the ERR
// messages (ERR-8), else MSA-3, else the error codes' texts.
func ackReason(ack []byte) string {
	a, _ := hl7.ReadACK(ack)
	var msgs, codes []string
	for _, e := range a.Errors {
		if e.Message != "" {
			msgs = append(msgs, e.Message)
		} else if e.CodeText != "" {
			codes = append(codes, e.CodeText)
		}
	}
	switch {
	case len(msgs) > 0:
		return ": " + strings.Join(msgs, "; ")
	case a.Text != "":
		return ": " + a.Text // v2.1-2.4 carry the message in MSA-3
	case len(codes) > 0:
		return ": " + strings.Join(codes, "; ")
	}
	return ""
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && isatty.IsTerminal(f.Fd())
}

// looksLikeHL7 reports whether data starts (after a UTF-8 BOM, white space
// or an MLLP start byte) with a message, batch or file header segment. A file
// in a directory that does is sent even when it is malformed, so that its
// errors are reported rather than skipped.
func looksLikeHL7(data []byte) bool {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	data = bytes.TrimLeft(data, " \t\r\n\x0b")
	for _, h := range []string{"MSH", "FHS", "BHS"} {
		if bytes.HasPrefix(data, []byte(h)) {
			return true
		}
	}
	return false
}
