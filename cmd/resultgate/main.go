// Command resultgate receives HL7v2 results over MLLP, stores them durably in
// NATS JetStream, tags the sensitive ones with evidence and releases each to the
// patient-portal feed at once or after a lawful, deadline-bound hold.
//
// main parses flags, owns signals and calls the packages below; nothing below
// cmd/ exits the process.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// exitError carries a process exit code through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCmd().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "resultgate:", err)
		var ee *exitError
		if errors.As(err, &ee) {
			os.Exit(ee.code)
		}
		os.Exit(1)
	}
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "resultgate",
		Short: "Hold sensitive HL7v2 results on a lawful basis before they reach the patient portal",
		Long: `resultgate receives ORU results over MLLP, stores them in NATS JetStream before it
acknowledges them, tags sensitive results (pathology, imaging, genetics, tumour markers,
malignancy) with evidence, and releases each to the portal feed at once or after a hold
that rests on a recorded lawful basis and ends by a hard deadline.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	for _, c := range subcommands() {
		root.AddCommand(c)
	}
	return root
}
