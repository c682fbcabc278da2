package main

// audit verify and audit init: the audit trail's integrity (issue 15 point 3,
// docs/OPERATIONS.md "Audit trail integrity"). They read AUDIT directly over
// NATS, not through the API: verify with the operator's read-only
// credentials, init with the service credentials (it creates or restores
// AUDIT).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/resultgate/resultgate/router/audit"
	"github.com/resultgate/resultgate/router/bus"
)

// auditKeyFlags locate the partition key that signs the checkpoints.
type auditKeyFlags struct {
	keyFile string
	maxTime time.Duration
}

func (k *auditKeyFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&k.keyFile, "partition-key-file", "", "the instance secret that signs the checkpoints (default DATA/partition.key; intake.partition_key_file with nats.url)")
	cmd.Flags().DurationVar(&k.maxTime, "max-time", 30*time.Minute, "how long the whole command may take (reading a long trail)")
}

// key returns the checkpoint key, or nil when no partition key is found and
// required is false.
func (k *auditKeyFlags) key(nf *natsFlags, required bool) ([]byte, error) {
	path := k.keyFile
	if path == "" {
		path = filepath.Join(nf.dataDir, "partition.key")
		if _, err := os.Stat(path); err != nil && !required {
			return nil, nil
		}
	}
	secret, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the partition key (--partition-key-file): %w", err)
	}
	return audit.CheckpointKey(secret), nil
}

func newAuditVerifyCmd(nf *natsFlags) *cobra.Command {
	var kf auditKeyFlags
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Prove the audit trail intact: walk the hash chain and check the signed checkpoints",
		Long: `verify reads every event of the AUDIT stream, oldest first, and checks that each one
carries the hash of the one before it, that no sequence is missing, that the stream
still has its protections (no limits, deny delete, deny purge), and that it matches
the last signed checkpoint (it neither ends before it nor was rewritten up to it).
It reports every gap, edit, truncation or deletion, and exits 1 when it finds one.

It reads with the operator's credentials (DATA/nats/operator.nk, or --nats-creds) and
checks the checkpoint's signature with the partition key (DATA/partition.key, or
--partition-key-file); without the key the signature is reported as not checked.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			key, err := kf.key(nf, kf.keyFile != "")
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), kf.maxTime)
			defer cancel()
			nc, err := connectBounded(ctx, nf, bus.OperatorSeedFile)
			if err != nil {
				return err
			}
			defer nc.Close()
			js, err := jetstream.New(nc)
			if err != nil {
				return fmt.Errorf("JetStream: %w", err)
			}
			rep, err := audit.Verify(ctx, js, audit.CheckOptions{Key: key})
			if err != nil {
				return err
			}
			if nf.json {
				if err := printJSON(cmd.OutOrStdout(), rep); err != nil {
					return err
				}
			} else {
				writeVerify(cmd.OutOrStdout(), rep, key != nil)
			}
			if len(rep.Findings) > 0 {
				return &exitError{code: 1, err: fmt.Errorf("%w: %d finding(s)", audit.ErrIntegrity, len(rep.Findings))}
			}
			return nil
		},
	}
	kf.register(cmd)
	return cmd
}

// connectBounded connects within --timeout; the command itself may then run
// for --max-time.
func connectBounded(ctx context.Context, nf *natsFlags, seed string) (*nats.Conn, error) {
	cctx, cancel := context.WithTimeout(ctx, nf.timeout)
	defer cancel()
	return nf.connect(cctx, seed)
}

// writeVerify prints a verification report for a person.
func writeVerify(w io.Writer, r *audit.Report, keyed bool) {
	if r.Stream {
		fmt.Fprintf(w, "AUDIT: sequences %d to %d, %d events stored, %d deleted; %d chained, %d written before the chain\n",
			r.FirstSeq, r.LastSeq, r.Msgs, r.Deleted, r.Chained, r.Legacy)
	} else {
		fmt.Fprintln(w, "AUDIT: no such stream")
	}
	switch cp := r.Checkpoint; {
	case cp == nil:
		fmt.Fprintln(w, "checkpoint: none yet")
	default:
		sig := "signature valid"
		switch {
		case !keyed:
			sig = "signature NOT CHECKED (no partition key)"
		case !r.CheckpointSigned:
			sig = "signature INVALID"
		}
		fmt.Fprintf(w, "checkpoint: sequence %d, %d events, at %s, %s\n", cp.Seq, cp.Msgs, cp.At.UTC().Format(time.RFC3339), sig)
		if cp.AcceptedSeq > 0 || cp.Accepted != nil {
			fmt.Fprintf(w, "accepted by an operator up to sequence %d\n", cp.AcceptedSeq)
		}
	}
	for _, f := range r.Accepted {
		fmt.Fprintf(w, "  accepted %s\n", f)
	}
	if len(r.Findings) == 0 {
		fmt.Fprintln(w, "no findings: the trail is intact")
		return
	}
	for _, f := range r.Findings {
		fmt.Fprintf(w, "FINDING %s\n", f)
	}
	fmt.Fprintf(w, "%d finding(s). What to do: %s\n", len(r.Findings), r.Recovery)
}

func newAuditInitCmd(nf *natsFlags) *cobra.Command {
	var (
		kf         auditKeyFlags
		acceptNew  bool
		by, reason string
	)
	cmd := &cobra.Command{
		Use:   "init --accept-new --by NAME --reason TEXT",
		Short: "Accept the audit trail as it stands after an integrity finding (recreates or restores AUDIT)",
		Long: `init is the explicit step after resultgate found the audit trail missing, truncated,
rewritten or reconfigured (serve logs it, /readyz fails, audit verify lists it). A new
installation never needs it: serve creates AUDIT on its first start.

First restore AUDIT from a backup if you have one. Otherwise init records the loss: it
creates AUDIT if it is missing (or restores its protections), writes a checkpoint signed
with the partition key that accepts the trail as it stands, with who, why and what was
found, and appends an "integrity" event to the trail. Restart serve afterwards.

It needs the service credentials (DATA/nats/service.nk, or --nats-creds with the rights
to create and update streams: in a cluster, the provisioning user).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !acceptNew {
				return &exitError{code: 2, err: errors.New("--accept-new is required: init accepts the trail as it stands, with any loss")}
			}
			if err := required("by", by); err != nil {
				return err
			}
			if err := required("reason", reason); err != nil {
				return err
			}
			key, err := kf.key(nf, true)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), kf.maxTime)
			defer cancel()
			nc, err := connectBounded(ctx, nf, bus.ServiceSeedFile)
			if err != nil {
				return err
			}
			defer nc.Close()
			js, err := jetstream.New(nc)
			if err != nil {
				return fmt.Errorf("JetStream: %w", err)
			}
			before, err := audit.Verify(ctx, js, audit.CheckOptions{Key: key})
			if err != nil {
				return err
			}
			if err := bus.RestoreAudit(ctx, js, bus.StreamsConfig{}); err != nil {
				return err
			}
			after, err := audit.Verify(ctx, js, audit.CheckOptions{Key: key})
			if err != nil {
				return err
			}
			// Before the restore and after (a restored limit no longer
			// counts, what it removed still does), each finding once.
			var findings []audit.Finding
			seen := map[string]bool{}
			for _, f := range append(slices.Clip(before.Findings), after.Findings...) {
				if !seen[f.String()] {
					seen[f.String()] = true
					findings = append(findings, f)
				}
			}
			cp, err := audit.WriteCheckpoint(ctx, js, key, &audit.Acceptance{By: by, Reason: reason, Findings: findings})
			if err != nil {
				return err
			}
			trail := audit.NewTrail(js, zerolog.Nop())
			if err := trail.Record(ctx, "integrity-"+strconv.FormatInt(cp.At.UnixNano(), 10), audit.Event{
				Kind: bus.AuditIntegrity, At: cp.At, Action: "accepted", Actor: by, Role: "operator",
				Reason: fmt.Sprintf("%s (%d finding(s) accepted up to sequence %d)", reason, len(findings), cp.Seq),
			}); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			for _, f := range findings {
				fmt.Fprintf(w, "accepted %s\n", f)
			}
			fmt.Fprintf(w, "audit trail accepted by %s up to sequence %d (%d finding(s)); restart serve\n", by, cp.Seq, len(findings))
			return nil
		},
	}
	kf.register(cmd)
	cmd.Flags().BoolVar(&acceptNew, "accept-new", false, "accept the trail as it stands (required)")
	cmd.Flags().StringVar(&by, "by", "", "who accepts it (required, recorded in the checkpoint and the trail)")
	cmd.Flags().StringVar(&reason, "reason", "", "why, e.g. the incident number (required, recorded)")
	return cmd
}
