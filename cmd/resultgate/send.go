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
	)
	cmd := &cobra.Command{
		Use:   "send --addr HOST:PORT FILE|DIR|- ...",
		Short: "Send HL7 messages over MLLP, wait for each ACK, and summarise",
		Long: `send reads every message from the files given (a directory's files in name order;
batches, files and back-to-back messages are split), sends each over one MLLP
connection, waits for its ACK and prints a summary. It exits with status 1 when any
message was not positively acknowledged (AA or CA).`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			tc, err := tf.config()
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			msgs, err := readMessages(cmd.InOrStdin(), cmd.ErrOrStderr(), args)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			ctx := cmd.Context()
			cl, err := mllp.Dial(ctx, mllp.ClientConfig{Addr: addr, TLS: tc, AckTimeout: ackTimeout, DialTimeout: 10 * time.Second})
			if err != nil {
				return &exitError{code: 1, err: fmt.Errorf("connecting to %s: %w", addr, err)}
			}
			defer cl.Close()
			out, errw := cmd.OutOrStdout(), cmd.ErrOrStderr()
			progress := !quiet && len(msgs) > 20 && isTerminal(errw)
			var sum sendSummary
			for i, m := range msgs {
				if ctx.Err() != nil {
					break
				}
				noAck := noAckRequested(m)
				sctx, scancel := ctx, context.CancelFunc(func() {})
				if noAck {
					// MSH-15 NE/ER: a stored message gets no accept ACK; wait
					// briefly for an error ACK only.
					sctx, scancel = context.WithTimeout(ctx, noAckWait)
				}
				ack, err := cl.Send(sctx, m)
				scancel()
				if noAck && err != nil && ctx.Err() == nil {
					sum.sent++
					sum.noAck++
					continue
				}
				sum.add(ack, err)
				if err != nil && !quiet {
					fmt.Fprintf(errw, "message %d: %v\n", i+1, err)
				} else if code := loadgen.AckCode(ack); !quiet && code != "AA" && code != "CA" {
					fmt.Fprintf(errw, "message %d: %s%s\n", i+1, code, ackReason(ack))
				}
				if progress && (i+1)%100 == 0 {
					fmt.Fprintf(errw, "\r%d/%d sent", i+1, len(msgs))
				}
			}
			if progress {
				fmt.Fprintln(errw)
			}
			fmt.Fprintln(out, sum.String())
			if sum.sent < len(msgs) || sum.positive+sum.noAck != sum.sent {
				return &exitError{code: 1, err: errors.New("not every message was positively acknowledged")}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:2575", "MLLP address of the receiver")
	cmd.Flags().DurationVar(&ackTimeout, "ack-timeout", 30*time.Second, "how long to wait for each ACK")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only the summary")
	tf.register(cmd)
	return cmd
}

// noAckWait is how long send waits for an error ACK to a message whose MSH-15
// asks for no accept ACK on success (NE, ER).
const noAckWait = 2 * time.Second

// noAckRequested reports whether msg's MSH-15 asks for no accept ACK on success.
func noAckRequested(msg []byte) bool {
	m, err := hl7.Parse(msg)
	if err != nil {
		return false
	}
	mode := m.MSH().AcceptAckType
	return mode == "NE" || mode == "ER"
}

// sendSummary counts ACK outcomes.
type sendSummary struct {
	sent, positive, errors, rejects, timeouts, failures, noAck int
}

func (s *sendSummary) add(ack []byte, err error) {
	s.sent++
	switch {
	case errors.Is(err, mllp.ErrAckTimeout):
		s.timeouts++
	case err != nil:
		s.failures++
	default:
		switch loadgen.AckCode(ack) {
		case "AA", "CA":
			s.positive++
		case "AE", "CE":
			s.errors++
		case "AR", "CR":
			s.rejects++
		default:
			s.failures++
		}
	}
}

func (s sendSummary) String() string {
	str := fmt.Sprintf("sent %d: AA/CA %d, AE/CE %d, AR/CR %d, timeouts %d, other failures %d",
		s.sent, s.positive, s.errors, s.rejects, s.timeouts, s.failures)
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
