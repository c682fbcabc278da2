package main

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/resultgate/resultgate/internal/loadgen"
)

func newBenchCmd() *cobra.Command {
	var (
		cfg          loadgen.Config
		tf           tlsFlags
		asJSON       bool
		processingID string
	)
	cmd := &cobra.Command{
		Use:   "bench --addr HOST:PORT --conns N --count M FILE ...",
		Short: "Load-test an MLLP receiver with unique copies of the messages in FILE",
		Long: `bench sends --count messages over --conns connections, cycling through the messages
found in the files given, and gives every copy a unique MSH-10 so that duplicate
detection hides no work. It reports msg/s and p50/p90/p99/max ACK latency. With
--rate it paces an open-loop load (messages per second in total).

Every copy is sent with MSH-11 (processing ID) D, debugging, by default: a
resultgate receiver processes, classifies and decides it like any result but
releases it to the test feed (test.portal.>), never to the patient feed or the
forwarder. --processing-id P loads the patient feed (a test installation only);
--processing-id keep sends the files' own MSH-11.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			tc, err := tf.config()
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			cfg.TLS = tc
			msgs, err := readMessages(cmd.InOrStdin(), cmd.ErrOrStderr(), args)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			switch processingID {
			case "keep":
			case "P", "T", "D":
				for i, m := range msgs {
					msgs[i] = loadgen.WithProcessingID(m, processingID)
				}
			default:
				return &exitError{code: 2, err: fmt.Errorf("--processing-id %q: want P, T, D or keep", processingID)}
			}
			if (processingID == "D" || processingID == "T") && !asJSON {
				fmt.Fprintf(cmd.ErrOrStderr(), "sending with MSH-11 %s: a resultgate receiver releases these to the test feed (test.portal.>), not to patients or the forwarder\n", processingID)
			}
			res, err := loadgen.Run(cmd.Context(), cfg, msgs)
			if err != nil && res.Sent == 0 {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				_ = json.NewEncoder(out).Encode(res)
			} else {
				fmt.Fprintf(out, "sent %d over %d conns in %.2fs: %.0f msg/s\n", res.Sent, res.Conns, res.Seconds, res.MsgPerSec)
				fmt.Fprintf(out, "ACK latency ms: p50 %.3f  p90 %.3f  p99 %.3f  max %.3f\n", res.P50Millis, res.P90Millis, res.P99Millis, res.MaxMillis)
				fmt.Fprintf(out, "AA/CA %d  AE/CE %d  AR/CR %d  failed %d\n", res.Accepted, res.Errors, res.Rejected, res.Failed)
			}
			if res.Accepted != res.Sent {
				return &exitError{code: 1, err: fmt.Errorf("%d of %d messages not positively acknowledged", res.Sent-res.Accepted, res.Sent)}
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Addr, "addr", "127.0.0.1:2575", "MLLP address of the receiver")
	f.IntVar(&cfg.Conns, "conns", 8, "concurrent connections")
	f.IntVar(&cfg.Count, "count", 10000, "messages to send in total")
	f.Float64Var(&cfg.Rate, "rate", 0, "target messages per second in total (0: as fast as ACKs allow)")
	f.DurationVar(&cfg.AckTimeout, "ack-timeout", 30*time.Second, "how long to wait for each ACK")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON")
	f.StringVar(&processingID, "processing-id", "D", "MSH-11 of every copy: D (debugging, the test feed), T (training), P (production: the patient feed) or keep")
	tf.register(cmd)
	return cmd
}
