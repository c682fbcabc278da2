package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/resultgate/resultgate/router/hold"
	"github.com/resultgate/resultgate/router/pipeline"
)

func newDeterminationsCmd() *cobra.Command {
	var nf natsFlags
	cmd := &cobra.Command{
		Use:   "determinations",
		Short: "List and withdraw clinician determinations (through the NATS API of a running serve)",
		Long: `determinations talks to a running resultgate serve over its NATS request/reply API.

  resultgate determinations list [--by PROVIDER-ID] [--state active|withdrawn|released] [--order FILLER --issuer ISSUER]
  resultgate determinations withdraw DET-ID --by PROVIDER-ID --reason ... [--role oncall]

A determination is placed with resultgate holds place. withdraw ends one (audited,
reason required) and re-evaluates the held results of its order: one that rested
only on it is released. The clinician who placed it, one covering them, or on-call
(--role oncall) may withdraw it.`,
	}
	nf.register(cmd)
	cmd.AddCommand(newDeterminationsListCmd(&nf), newDeterminationsWithdrawCmd(&nf))
	return cmd
}

func newDeterminationsListCmd(nf *natsFlags) *cobra.Command {
	var f pipeline.DeterminationFilter
	var state string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List clinician determinations, oldest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch hold.DeterminationState(state) {
			case "", hold.DeterminationActive, hold.DeterminationWithdrawn, hold.DeterminationReleased:
				f.State = hold.DeterminationState(state)
			default:
				return &exitError{code: 2, err: fmt.Errorf("--state: want active, withdrawn or released, got %q", state)}
			}
			var ds []hold.Determination
			if err := nf.call(cmd.Context(), "determinations.list", f, &ds); err != nil {
				return err
			}
			if nf.json {
				return printJSON(cmd.OutOrStdout(), ds)
			}
			return printDeterminations(cmd.OutOrStdout(), ds)
		},
	}
	cmd.Flags().StringVar(&f.By, "by", "", "only those placed by this clinician (provider ID)")
	cmd.Flags().StringVar(&state, "state", "", "active, withdrawn or released (default all)")
	cmd.Flags().StringVar(&f.Order, "order", "", "only those on this filler order number")
	cmd.Flags().StringVar(&f.Issuer, "issuer", "", "only those on orders of this issuer")
	return cmd
}

func printDeterminations(w io.Writer, ds []hold.Determination) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tORDER\tISSUER\tSTATE\tBY\tHARM\tPLACED\tREVIEW")
	for _, d := range ds {
		state := d.State
		if state == "" {
			state = hold.DeterminationActive
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", dash(d.ID), d.Order, dash(d.Issuer), state, d.By, dash(d.HarmType),
			d.At.UTC().Format(time.RFC3339), reviewText(d.Review))
	}
	return tw.Flush()
}

func reviewText(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func newDeterminationsWithdrawCmd(nf *natsFlags) *cobra.Command {
	var req pipeline.WithdrawRequest
	cmd := &cobra.Command{
		Use:   "withdraw DET-ID",
		Short: "Withdraw a clinician determination (reason required, audited)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := required("by", req.By); err != nil {
				return err
			}
			if err := required("reason", req.Reason); err != nil {
				return err
			}
			req.ID = args[0]
			var res pipeline.WithdrawResult
			if err := nf.call(cmd.Context(), "determinations.withdraw", req, &res); err != nil {
				return err
			}
			if nf.json {
				return printJSON(cmd.OutOrStdout(), res)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "determination %s withdrawn by %s\n", res.Determination.ID, req.By)
			for _, id := range res.Released {
				fmt.Fprintf(w, "hold %s released\n", id)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&req.By, "by", "", "who withdraws it: the placing clinician's provider ID, a covering clinician's, or the on-call clinician (required)")
	cmd.Flags().StringVar(&req.Role, "role", "", "clinician (default) or oncall")
	cmd.Flags().StringVar(&req.Reason, "reason", "", "why (required, audited)")
	return cmd
}
