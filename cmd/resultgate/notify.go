package main

import (
	"context"
	"fmt"
	"text/tabwriter"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/resultgate/resultgate/router/bus"
	"github.com/resultgate/resultgate/router/notify/deliver"
)

func newNotifyCmd() *cobra.Command {
	var nf natsFlags
	cmd := &cobra.Command{
		Use:   "notify",
		Short: "List the notifications no receiver accepted (notify.receivers)",
		Long: `serve delivers notifications to the receivers of notify.receivers, retrying
with back-off. A notification a receiver still refuses after notify.max_attempts
is parked in the notify_failures bucket, one record per receiver, without PHI:
failures lists them, oldest first, so that someone can look at each hold on the
worklist and tell the clinician or on-call another way.

It reads the bucket over JetStream: the NATS user needs read access to it.

  resultgate notify failures [--json]`,
	}
	nf.register(cmd)
	failures := &cobra.Command{
		Use:   "failures",
		Short: "List parked notifications, oldest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), nf.timeout)
			defer cancel()
			fs, err := nf.notifyFailures(ctx)
			if err != nil {
				return err
			}
			if nf.json {
				return printJSON(cmd.OutOrStdout(), fs)
			}
			w := cmd.OutOrStdout()
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "STREAM SEQ\tPARKED\tRECEIVER\tKIND\tHOLD\tATTEMPTS\tLAST ERROR")
			for _, f := range fs {
				fmt.Fprintln(tw, f.String())
			}
			tw.Flush()
			fmt.Fprintf(w, "%d parked notification(s)\n", len(fs))
			return nil
		},
	}
	cmd.AddCommand(failures)
	return cmd
}

// notifyFailures reads the notify_failures bucket.
func (f *natsFlags) notifyFailures(ctx context.Context) ([]deliver.Failure, error) {
	nc, err := f.connect(ctx, bus.OperatorSeedFile)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("JetStream: %w", err)
	}
	return deliver.Failures(ctx, js)
}
