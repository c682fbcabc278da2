package main

import "github.com/spf13/cobra"

// subcommands lists every subcommand of resultgate.
func subcommands() []*cobra.Command {
	return []*cobra.Command{
		newServeCmd(),
		newSendCmd(),
		newBenchCmd(),
		newInspectCmd(),
		newExplainCmd(),
		newReportCmd(),
		newCheckConfigCmd(),
		newTokenCmd(),
		newHoldsCmd(),
		newDeterminationsCmd(),
		newConsentCmd(),
		newDeadCmd(),
		newAuditCmd(),
		newReleasesCmd(),
		newNotifyCmd(),
	}
}
