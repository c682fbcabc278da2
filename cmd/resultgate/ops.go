package main

// The operator commands: holds, consent, dead and audit. They call the NATS
// request/reply API (api.Client, subjects resultgate.api.*) of a running
// `resultgate serve`, so they work against one instance or a cluster alike.
// The API trusts the --by (--provider) and role it is given (docs/OPERATIONS.md,
// "NATS subject permissions"): these commands are for operators with NATS rights
// on resultgate.api.>, not for clinicians, who use the web page or the HTTP API.
//
// --by is always who acts, as the audit trail records them (a name, or a
// system's name); a clinician's provider ID (ORC-12/OBR-16), which decides who
// may release a hold, is --provider.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/resultgate/resultgate/policy"
	"github.com/resultgate/resultgate/router/feed"

	"github.com/resultgate/resultgate/router/dead"

	"github.com/resultgate/resultgate/router/api"
	"github.com/resultgate/resultgate/router/pipeline"

	"github.com/resultgate/resultgate/router/holdview"

	"github.com/resultgate/resultgate/router/audit"

	"github.com/resultgate/resultgate/router/store"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/resultgate/resultgate/httpapi"
	"github.com/resultgate/resultgate/router/bus"
	"github.com/resultgate/resultgate/router/hold"
)

// natsFlags are the connection flags shared by the operator commands.
type natsFlags struct {
	url, creds, ca, cert, key string
	dataDir                   string
	timeout                   time.Duration
	json                      bool
}

func (f *natsFlags) register(cmd *cobra.Command) {
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.url, "nats-url", envOr("RESULTGATE_NATS_URL", nats.DefaultURL), "NATS server of the running resultgate (env RESULTGATE_NATS_URL; the embedded server listens on 127.0.0.1:4222)")
	pf.StringVar(&f.creds, "nats-creds", os.Getenv("RESULTGATE_NATS_CREDS"), "NATS credentials file: JWT creds or NKey seed (env RESULTGATE_NATS_CREDS; default: the embedded server's DATA/nats/operator.nk)")
	pf.StringVar(&f.dataDir, "data", envOr("RESULTGATE_DATA", "./data"), "data directory of the local serve, for its NATS credentials (env RESULTGATE_DATA)")
	pf.StringVar(&f.ca, "nats-ca", "", "CA certificate file for a TLS NATS connection")
	pf.StringVar(&f.cert, "nats-cert", "", "client certificate file for NATS mutual TLS")
	pf.StringVar(&f.key, "nats-key", "", "client key file for NATS mutual TLS")
	pf.DurationVar(&f.timeout, "timeout", 30*time.Second, "how long to wait for the answer")
	pf.BoolVar(&f.json, "json", false, "print the answer as JSON")
}

// call connects, calls op and decodes the answer into out. An API error is
// returned as *api.Error (exit status 1); a connection failure says so.
func (f *natsFlags) call(ctx context.Context, op string, req, out any) error {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	nc, err := f.connect(ctx, bus.OperatorSeedFile)
	if err != nil {
		return err
	}
	defer nc.Close()
	err = api.Client{NC: nc, Timeout: f.timeout}.Call(ctx, op, req, out)
	if errors.Is(err, nats.ErrNoResponders) {
		return fmt.Errorf("no resultgate instance answers on %s (is serve running with its pipeline?)", bus.SubjectAPIPrefix+op)
	}
	return err
}

// credsFile is --nats-creds, or else the embedded server's seed file named
// seed in --data when it exists (the commands then need no flag on the host
// of a single-node serve).
func (f *natsFlags) credsFile(seed string) string {
	if f.creds != "" {
		return f.creds
	}
	p := filepath.Join(bus.CredsDir(f.dataDir), seed)
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return ""
}

// connect opens the connection of an operator command, with the credentials
// of credsFile(seed).
func (f *natsFlags) connect(ctx context.Context, seed string) (*nats.Conn, error) {
	nc, err := bus.Connect(ctx, bus.ConnConfig{
		URL: f.url, CredsFile: f.credsFile(seed), CAFile: f.ca, CertFile: f.cert, KeyFile: f.key,
		Name: "resultgate-cli", Logger: zerolog.Nop(),
	})
	if err != nil {
		if errors.Is(err, nats.ErrAuthorization) {
			return nil, fmt.Errorf("NATS refused the credentials (give --data of the serve, or --nats-creds): %w", err)
		}
		return nil, fmt.Errorf("is resultgate serve running? %w", err)
	}
	return nc, nil
}

// printJSON writes v indented.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// required reports a missing flag as a usage error (exit status 2).
func required(name, value string) error {
	if strings.TrimSpace(value) == "" {
		return &exitError{code: 2, err: fmt.Errorf("--%s is required", name)}
	}
	return nil
}

func newHoldsCmd() *cobra.Command {
	var nf natsFlags
	cmd := &cobra.Command{
		Use:   "holds",
		Short: "List, show, release, override and place holds (through the NATS API of a running serve)",
		Long: `holds talks to a running resultgate serve over its NATS request/reply API.

  resultgate holds list [--provider ID] [--status held] [--tag pathology]
  resultgate holds show HOLD-ID --by NAME            (the read is audited)
  resultgate holds release HOLD-ID --provider PROVIDER-ID [--reason ...] [--note ...]
  resultgate holds override HOLD-ID --by NAME --reason ...
  resultgate holds place --order FILLER --issuer ISSUER [--patient ID] --reason ... --by PROVIDER-ID

--by is who acts, as the audit trail records them. release is a clinician's
acknowledgement: --provider must be the ordering provider's ID (ORC-12/OBR-16) or
a listed covering clinician's, and is recorded as the releasing actor, as the
HTTP API records a clinician's release under their token's provider ID (--by on
release is a deprecated alias of --provider). override is the on-call path and
needs a reason. place records a clinician determination (Preventing Harm) on an
order, before or after its result arrives: the order is its filler number and its
issuer (the number's namespace, or the sending facility), and the determination is
for the patient named or, without one, the patient of the order's result. It runs
until the clinician who placed it (or one covering them, or on-call) releases the
result, or it is withdrawn (resultgate determinations withdraw), or its review date.`,
	}
	nf.register(cmd)
	cmd.AddCommand(newHoldsListCmd(&nf), newHoldsShowCmd(&nf), newHoldsReleaseCmd(&nf),
		newHoldsOverrideCmd(&nf), newHoldsPlaceCmd(&nf))
	return cmd
}

func newHoldsListCmd(nf *natsFlags) *cobra.Command {
	var f holdview.Filter
	var status string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List holds, earliest deadline first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f.State = hold.HoldState(status)
			var hs []*hold.Hold
			if err := nf.call(cmd.Context(), "holds.list", f, &hs); err != nil {
				return err
			}
			if nf.json {
				return printJSON(cmd.OutOrStdout(), hs)
			}
			writeHoldTable(cmd.OutOrStdout(), hs, time.Now())
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.Provider, "provider", "", "only holds of this ordering provider ID")
	fl.StringVar(&status, "status", "", "only holds in this state: held, released, superseded or withdrawn")
	fl.StringVar(&f.Tag, "tag", "", "only holds with this tag (e.g. pathology, malignancy)")
	fl.IntVar(&f.Limit, "limit", 0, "at most this many")
	return cmd
}

// writeHoldTable prints one line per hold.
func writeHoldTable(w io.Writer, hs []*hold.Hold, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HOLD\tSTATE\tDEADLINE\tLEFT\tPROVIDER\tTAGS\tBASES")
	for _, h := range hs {
		left := "-"
		if h.Open() {
			left = remaining(h.Deadline.Sub(now))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", h.ID, h.State, h.Deadline.UTC().Format(time.RFC3339),
			left, dash(h.ProviderID), dash(strings.Join(tagNames(h), ",")), dash(strings.Join(basisKinds(h), ",")))
	}
	tw.Flush()
	fmt.Fprintf(w, "%d hold(s)\n", len(hs))
}

func remaining(d time.Duration) string {
	if d <= 0 {
		return "due"
	}
	d = d.Round(time.Minute)
	if d >= 48*time.Hour {
		return fmt.Sprintf("%dd%dh", int(d.Hours())/24, int(d.Hours())%24)
	}
	return strings.TrimSuffix(d.String(), "0s")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func tagNames(h *hold.Hold) []string {
	out := make([]string, 0, len(h.Tags))
	for _, t := range h.Tags {
		out = append(out, t.Tag)
	}
	return out
}

func basisKinds(h *hold.Hold) []string {
	out := make([]string, 0, len(h.Bases))
	for _, b := range h.Bases {
		out = append(out, b.Kind)
	}
	return out
}

func newHoldsShowCmd(nf *natsFlags) *cobra.Command {
	var by, role string
	cmd := &cobra.Command{
		Use:   "show HOLD-ID",
		Short: "Show one hold: tags with evidence, bases, deadline and every transition (audited read)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := required("by", by); err != nil {
				return err
			}
			var h hold.Hold
			if err := nf.call(cmd.Context(), "holds.get", api.HoldIDRequest{ID: args[0], By: by, Role: role}, &h); err != nil {
				return err
			}
			if nf.json {
				return printJSON(cmd.OutOrStdout(), &h)
			}
			writeHold(cmd.OutOrStdout(), &h, time.Now())
			return nil
		},
	}
	cmd.Flags().StringVar(&by, "by", "", "who is reading (recorded in the audit trail; required)")
	cmd.Flags().StringVar(&role, "role", "admin", "the reader's role, recorded with the read")
	return cmd
}

// writeHold prints a hold for a person.
func writeHold(w io.Writer, h *hold.Hold, now time.Time) {
	fmt.Fprintf(w, "hold %s: %s\n", h.ID, h.State)
	fmt.Fprintf(w, "  inbound:   %s seq %d, control ID %s\n", h.Inbound.Stream, h.Inbound.Seq, h.Inbound.ControlID)
	fmt.Fprintf(w, "  provider:  %s\n", dash(h.ProviderID))
	fmt.Fprintf(w, "  created:   %s\n", h.CreatedAt.UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "  deadline:  %s", h.Deadline.UTC().Format(time.RFC3339))
	if h.Open() {
		fmt.Fprintf(w, " (%s left)", remaining(h.Deadline.Sub(now)))
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "  notify:    %s\n", dash(string(h.Notify)))
	if h.Note != "" {
		fmt.Fprintf(w, "  note:      %s\n", h.Note)
	}
	fmt.Fprintf(w, "  rule set:  %s\n", h.RulesetVersion)
	fmt.Fprintln(w, "  tags:")
	for _, t := range h.Tags {
		fmt.Fprintf(w, "    %s\n", t.Tag)
		for _, e := range t.Evidence {
			fmt.Fprintf(w, "      %s[%d]-%s  rule %s  %q\n", e.Segment, e.Occurrence, e.Field, e.Rule, e.Match)
		}
	}
	// Each basis in words (hold.BasisText, times in the statute's zone or
	// this machine's), identical ones once, each with its code and record.
	fmt.Fprintln(w, "  bases:")
	var said []string
	for i, pb := range hold.PolicyBases(h.Bases) {
		if pb.Kind == "" {
			pb.Kind = policy.BasisKind(h.Bases[i].Kind)
		}
		text := hold.BasisText(pb, time.Local)
		if slices.Contains(said, text) {
			continue
		}
		said = append(said, text)
		fmt.Fprintf(w, "    %s\n      %s  %s\n", text, h.Bases[i].Kind, string(h.Bases[i].Detail))
	}
	if h.Release != nil {
		fmt.Fprintf(w, "  released:  %s by %s (%s) at %s", h.Release.Path, h.Release.Actor, h.Release.Role, h.Release.At.UTC().Format(time.RFC3339))
		if h.Release.Reason != "" {
			fmt.Fprintf(w, ", reason %q", h.Release.Reason)
		}
		fmt.Fprintf(w, ", published %t\n", h.Published)
		if h.PublishError != "" {
			fmt.Fprintf(w, "  NOT PUBLISHED: %s (the sender must correct the message)\n", h.PublishError)
		}
	}
	if h.Supersedes != "" {
		fmt.Fprintf(w, "  supersedes:    %s\n", h.Supersedes)
	}
	if h.SupersededBy != "" {
		fmt.Fprintf(w, "  superseded by: %s\n", h.SupersededBy)
	}
	fmt.Fprintln(w, "  history:")
	for _, t := range h.Transitions {
		fmt.Fprintf(w, "    %s  %s -> %s  %s  by %s (%s)", t.At.UTC().Format(time.RFC3339), dash(string(t.From)), t.To, dash(string(t.Path)), t.Actor, t.Role)
		if t.Reason != "" {
			fmt.Fprintf(w, "  %q", t.Reason)
		}
		fmt.Fprintln(w)
	}
}

func newHoldsReleaseCmd(nf *natsFlags) *cobra.Command {
	var req api.ReleaseAPIRequest
	var byAlias string
	cmd := &cobra.Command{
		Use:   "release HOLD-ID",
		Short: "Release a held result as the ordering or a covering clinician",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("by") {
				// pflag's own deprecation notice goes to a buffer cobra
				// discards, so say it here.
				fmt.Fprintln(cmd.ErrOrStderr(), "resultgate: --by on holds release is deprecated (it is the provider ID here, a name elsewhere); use --provider")
				if req.By != "" && req.By != byAlias {
					return &exitError{code: 2, err: fmt.Errorf("--by %q and --provider %q differ; give --provider only", byAlias, req.By)}
				}
				req.By = byAlias
			}
			if err := required("provider", req.By); err != nil {
				return err
			}
			req.ID = args[0]
			var h hold.Hold
			if err := nf.call(cmd.Context(), "holds.release", req, &h); err != nil {
				return err
			}
			return printOutcome(cmd.OutOrStdout(), nf.json, &h)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&req.By, "provider", "", "the releasing clinician's provider ID (ORC-12/OBR-16): the ordering provider or a covering clinician (required)")
	// --by was the provider ID here but a name everywhere else; it stays as
	// an alias of --provider for the scripts that use it.
	fl.StringVar(&byAlias, "by", "", "deprecated alias of --provider")
	_ = fl.MarkHidden("by")
	cmd.Flags().StringVar(&req.Reason, "reason", "", "why (optional)")
	cmd.Flags().StringVar(&req.Note, "note", "", "plain-language note to the patient (replaces the policy's note)")
	return cmd
}

func newHoldsOverrideCmd(nf *natsFlags) *cobra.Command {
	var req api.OverrideAPIRequest
	cmd := &cobra.Command{
		Use:   "override HOLD-ID",
		Short: "Release a held result as the on-call clinician (reason required)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := required("by", req.By); err != nil {
				return err
			}
			if err := required("reason", req.Reason); err != nil {
				return err
			}
			req.ID, req.Role = args[0], hold.RoleOnCall
			var h hold.Hold
			if err := nf.call(cmd.Context(), "holds.override", req, &h); err != nil {
				return err
			}
			return printOutcome(cmd.OutOrStdout(), nf.json, &h)
		},
	}
	cmd.Flags().StringVar(&req.By, "by", "", "the on-call clinician (required)")
	cmd.Flags().StringVar(&req.Reason, "reason", "", "why the hold is overridden (required, audited)")
	cmd.Flags().StringVar(&req.Note, "note", "", "plain-language note to the patient")
	return cmd
}

func printOutcome(w io.Writer, asJSON bool, h *hold.Hold) error {
	if asJSON {
		return printJSON(w, h)
	}
	fmt.Fprintf(w, "hold %s: %s", h.ID, h.State)
	if h.Release != nil {
		fmt.Fprintf(w, " (%s by %s at %s)", h.Release.Path, h.Release.Actor, h.Release.At.UTC().Format(time.RFC3339))
	}
	fmt.Fprintln(w)
	return nil
}

func newHoldsPlaceCmd(nf *natsFlags) *cobra.Command {
	var req pipeline.PlaceRequest
	var review string
	cmd := &cobra.Command{
		Use:   "place",
		Short: "Place a clinician determination (Preventing Harm hold) on an order",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, r := range [][2]string{{"order", req.Order}, {"issuer", req.Issuer}, {"reason", req.Reason}, {"by", req.By}} {
				if err := required(r[0], r[1]); err != nil {
					return err
				}
			}
			if review != "" {
				t, err := parseReview(review)
				if err != nil {
					return &exitError{code: 2, err: err}
				}
				req.Review = t
			}
			var res pipeline.PlaceResult
			if err := nf.call(cmd.Context(), "holds.place", req, &res); err != nil {
				return err
			}
			if nf.json {
				return printJSON(cmd.OutOrStdout(), res)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "determination %s recorded: %s; review %s\n", res.ID, res.Scope, res.Review.UTC().Format(time.RFC3339))
			switch {
			case res.HoldState == "":
				fmt.Fprintln(w, "no result on this order yet: the next one will be held")
			case res.HoldState == hold.StateHeld:
				fmt.Fprintf(w, "hold %s is held on it\n", res.HoldID)
			default:
				fmt.Fprintf(w, "the order's latest result is already %s (hold %s)\n", res.HoldState, dash(res.HoldID))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&req.Order, "order", "", "filler order number (OBR-3/ORC-3) (required)")
	cmd.Flags().StringVar(&req.Issuer, "issuer", "", "the order's issuer: the filler number's namespace (OBR-3.2) or, without one, the sending facility (MSH-4) (required)")
	cmd.Flags().StringVar(&req.Patient, "patient", "", "the patient identifier (PID-3) the determination is for (default: the patient of the order's result)")
	cmd.Flags().StringVar(&review, "review", "", "review date: an RFC 3339 time or a date (UTC) (default: the policy's default review period)")
	cmd.Flags().StringVar(&req.Reason, "reason", "", "the harm the hold prevents (required, audited)")
	cmd.Flags().StringVar(&req.HarmType, "harm-type", "", "type of harm, 45 CFR 171.201(d): "+strings.Join(hold.HarmTypes, " or "))
	cmd.Flags().StringVar(&req.By, "by", "", "the clinician making the determination: their provider ID, as the HTTP API records it (required)")
	cmd.Flags().StringVar(&req.Role, "role", "", "their role (default clinician)")
	return cmd
}

// parseReview reads a review date: an RFC 3339 time or a date (its start in
// UTC), as the HTTP API reads it.
func parseReview(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("--review: want an RFC 3339 time (2026-12-21T08:00:00Z) or a date (2026-12-21, UTC), got %q", s)
}

func newConsentCmd() *cobra.Command {
	var nf natsFlags
	cmd := &cobra.Command{
		Use:   "consent",
		Short: "Store or show a patient's result-release preference (FHIR R4 Consent)",
		Long: `consent stores a patient's FHIR R4 Consent (the resultgate profile, docs/CONSENT.md)
through the NATS API of a running resultgate serve, or shows the one on file.

  resultgate consent put consent.json --by "portal:patient"
  resultgate consent put revoked.json --by "Dr Grey" --role clinician
  resultgate consent show PATIENT-ID

A new or revoked Consent re-evaluates that patient's open holds at once. Each
patient's Consents are numbered 1, 2, 3...; --role is recorded with --by in the
audit trail and on the holds the Consent releases (default patient).`,
	}
	nf.register(cmd)
	var put pipeline.ConsentPut
	putCmd := &cobra.Command{
		Use:   "put FILE",
		Short: "Store the Consent in FILE (- for standard input)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := required("by", put.By); err != nil {
				return err
			}
			data, err := readInput(cmd, args[0])
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			if !json.Valid(data) {
				return &exitError{code: 2, err: fmt.Errorf("%s: not JSON", args[0])}
			}
			put.Consent = data
			var res pipeline.ConsentResult
			if err := nf.call(cmd.Context(), "consent.put", put, &res); err != nil {
				return err
			}
			if nf.json {
				return printJSON(cmd.OutOrStdout(), res)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "consent stored (revision %d) for patient key %s\n", res.Record.Revision, res.Record.PatientKey)
			fmt.Fprintf(w, "open holds re-evaluated: %d, released: %d\n", len(res.Reevaluated), len(res.Released))
			for _, id := range res.Released {
				fmt.Fprintf(w, "  released %s\n", id)
			}
			return nil
		},
	}
	putCmd.Flags().StringVar(&put.By, "by", "", "who is filing it: the patient, a proxy or staff (required, audited)")
	putCmd.Flags().StringVar(&put.Patient, "patient", "", "patient identifier (PID-3), when the Consent names the patient only by reference")
	putCmd.Flags().StringVar(&put.Role, "role", "", "the filer's role, recorded with --by: patient (default), proxy, clinician, admin...")
	showCmd := &cobra.Command{
		Use:   "show PATIENT-ID",
		Short: "Show the Consent on file for a patient identifier (PID-3)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var rec store.ConsentRecord
			if err := nf.call(cmd.Context(), "consent.get", api.ConsentGetRequest{Patient: args[0]}, &rec); err != nil {
				return err
			}
			if nf.json {
				return printJSON(cmd.OutOrStdout(), rec)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "revision %d, filed %s by %s", rec.Revision, rec.At.UTC().Format(time.RFC3339), rec.Actor)
			if rec.Role != "" {
				fmt.Fprintf(w, " (%s)", rec.Role)
			}
			fmt.Fprintln(w)
			var pretty any
			if json.Unmarshal(rec.Consent, &pretty) == nil {
				return printJSON(w, pretty)
			}
			_, err := w.Write(append(rec.Consent, '\n'))
			return err
		},
	}
	cmd.AddCommand(putCmd, showCmd)
	return cmd
}

// readInput reads a file, or standard input for "-".
func readInput(cmd *cobra.Command, name string) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(io.LimitReader(cmd.InOrStdin(), 1<<20))
	}
	return os.ReadFile(name)
}

func newDeadCmd() *cobra.Command {
	var nf natsFlags
	cmd := &cobra.Command{
		Use:   "dead",
		Short: "List dead-lettered messages or re-queue one (through the NATS API of a running serve)",
		Long: `A message the pipeline could not process after bounded retries is kept in the
DEAD stream with the reason. list shows them; replay re-queues one to the intake
stream (the original bytes, the same message ID) once the cause is fixed.

A message the intake refused (STAGE intake: not HL7, a type or facility not
accepted, too large, several patients) is kept there too, for the record, but
it was answered AR/CR and never stored, so the sender still holds it: replay
refuses it and says what to fix before the sender resends it.

A result that names no usable patient identifier (REASON unattributed: no
PID-3 ID number) is never released: it waits in triage, and on-call is
notified on notify.oncall. Have the sender correct and resend it (replay would
dead-letter the same bytes again), then close the record with discard, which
is audited and leaves the record on DEAD. --open lists what still waits.

  resultgate dead list [--limit 100] [--reason unattributed] [--open]
  resultgate dead replay SEQ --by NAME
  resultgate dead discard SEQ --by NAME --reason TEXT`,
	}
	nf.register(cmd)
	var limit int
	var reasonFilter string
	var open bool
	listCmd := &cobra.Command{
		Use:   "list",
		Short: "List dead-lettered messages, oldest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var recs []dead.Record
			if err := nf.call(cmd.Context(), "dead.list", api.DeadListRequest{Limit: limit, Reason: reasonFilter, Open: open}, &recs); err != nil {
				return err
			}
			if nf.json {
				return printJSON(cmd.OutOrStdout(), recs)
			}
			w := cmd.OutOrStdout()
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SEQ\tAT\tSTAGE\tREASON\tINBOUND\tDELIVERIES\tBYTES\tDETAIL")
			for _, r := range recs {
				stage := r.Stage
				if stage == "" {
					stage = "pipeline"
				}
				detail := r.Detail
				if d := r.Discarded; d != nil {
					detail += " [discarded " + d.At.UTC().Format(time.RFC3339) + " by " + d.By + ": " + d.Reason + "]"
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%d\t%d\t%s\n", r.Seq, r.At.UTC().Format(time.RFC3339), stage, r.Reason, r.InboundSeq, r.Deliveries, r.Size, detail)
			}
			tw.Flush()
			fmt.Fprintf(w, "%d dead-lettered message(s)\n", len(recs))
			return nil
		},
	}
	listCmd.Flags().IntVar(&limit, "limit", 100, "at most this many")
	listCmd.Flags().StringVar(&reasonFilter, "reason", "", "only records of this reason (e.g. unattributed)")
	listCmd.Flags().BoolVar(&open, "open", false, "leave out the records an operator discarded")
	var by string
	replayCmd := &cobra.Command{
		Use:   "replay SEQ",
		Short: "Re-queue the dead-lettered message SEQ for processing",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := required("by", by); err != nil {
				return err
			}
			seq, err := strconv.ParseUint(args[0], 10, 64)
			if err != nil || seq == 0 {
				return &exitError{code: 2, err: fmt.Errorf("SEQ: want the DEAD stream sequence from `resultgate dead list`, got %q", args[0])}
			}
			var rec dead.Record
			if err := nf.call(cmd.Context(), "dead.replay", api.DeadReplayRequest{Seq: seq, By: by}, &rec); err != nil {
				return err
			}
			if nf.json {
				return printJSON(cmd.OutOrStdout(), rec)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "dead-lettered message %d (%s) re-queued\n", rec.Seq, rec.Reason)
			return nil
		},
	}
	replayCmd.Flags().StringVar(&by, "by", "", "who replays it (required, audited)")
	var discardBy, discardReason string
	discardCmd := &cobra.Command{
		Use:   "discard SEQ",
		Short: "Close the dead-lettered message SEQ without replaying it (audited; the record stays on DEAD)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := required("by", discardBy); err != nil {
				return err
			}
			if err := required("reason", discardReason); err != nil {
				return err
			}
			seq, err := strconv.ParseUint(args[0], 10, 64)
			if err != nil || seq == 0 {
				return &exitError{code: 2, err: fmt.Errorf("SEQ: want the DEAD stream sequence from `resultgate dead list`, got %q", args[0])}
			}
			var rec dead.Record
			if err := nf.call(cmd.Context(), "dead.discard", dead.DiscardRequest{Seq: seq, By: discardBy, Reason: discardReason}, &rec); err != nil {
				return err
			}
			if nf.json {
				return printJSON(cmd.OutOrStdout(), rec)
			}
			d := rec.Discarded
			fmt.Fprintf(cmd.OutOrStdout(), "dead-lettered message %d (%s) discarded by %s at %s: %s\n", rec.Seq, rec.Reason, d.By, d.At.UTC().Format(time.RFC3339), d.Reason)
			return nil
		},
	}
	discardCmd.Flags().StringVar(&discardBy, "by", "", "who discards it (required, audited)")
	discardCmd.Flags().StringVar(&discardReason, "reason", "", "why, e.g. corrected and resent as control ID N (required, audited)")
	cmd.AddCommand(listCmd, replayCmd, discardCmd)
	return cmd
}

func newAuditCmd() *cobra.Command {
	var nf natsFlags
	var q audit.Query
	var since string
	cmd := &cobra.Command{
		Use:   "audit [--hold ID] [--since TIME]",
		Short: "Print the audit trail: decisions, transitions, overrides, Consents, reads",
		Long: `audit prints events of the AUDIT stream (deny-delete, deny-purge) through the NATS
API of a running resultgate serve: every decision with its tags, rule-set version,
bases and deadline; every transition, override and Consent change with actor and
reason; every read and every refused request.

  resultgate audit --hold HOLD-ID
  resultgate audit --since 2026-11-01            (or an RFC 3339 time, or a duration ago: 24h)
  resultgate audit verify                        (prove the trail intact: hash chain, checkpoints)
  resultgate audit init --accept-new --by NAME --reason TEXT   (after an integrity finding)

--since is read as the HTTP API reads since: ` + httpapi.WhenFormats + `.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if since != "" {
				t, err := parseSince(since, time.Now())
				if err != nil {
					return &exitError{code: 2, err: err}
				}
				q.Since = t
			}
			if q.HoldID == "" && q.Since.IsZero() {
				return &exitError{code: 2, err: errors.New("give --hold or --since")}
			}
			var evs []audit.Event
			if err := nf.call(cmd.Context(), "audit.query", q, &evs); err != nil {
				return err
			}
			if nf.json {
				return printJSON(cmd.OutOrStdout(), evs)
			}
			writeAudit(cmd.OutOrStdout(), evs)
			return nil
		},
	}
	nf.register(cmd)
	cmd.AddCommand(newAuditVerifyCmd(&nf), newAuditInitCmd(&nf))
	cmd.Flags().StringVar(&q.HoldID, "hold", "", "only the events of this hold")
	cmd.Flags().StringVar(&since, "since", "", "only events at or after this time: "+httpapi.WhenFormats)
	cmd.Flags().IntVar(&q.Limit, "limit", 0, "at most this many events (default and maximum 10000)")
	return cmd
}

func newReleasesCmd() *cobra.Command {
	var nf natsFlags
	var q feed.ReleasesQuery
	var since, path string
	cmd := &cobra.Command{
		Use:   "releases [--since TIME] [--path PATH]",
		Short: "List what the patient feed carries: results released at once, holds released, retractions",
		Long: `releases lists the messages of the patient feed (portal.hl7.> on PORTAL) through the
NATS API of a running resultgate serve, oldest first: hold ID, control ID, patient key,
release path, actor, time and how the patient is told; never the result itself.

  resultgate releases --since 24h
  resultgate releases --path immediate --since 2026-12-01

--since is read as the HTTP API reads since: ` + httpapi.WhenFormats + `.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if since != "" {
				t, err := parseSince(since, time.Now())
				if err != nil {
					return &exitError{code: 2, err: err}
				}
				q.Since = t
			}
			q.Path = hold.ReleasePath(path)
			if path != "" && !slices.Contains(hold.ReleasePaths, q.Path) {
				return &exitError{code: 2, err: fmt.Errorf("--path %q: not a release path", path)}
			}
			var recs []feed.FeedRecord
			if err := nf.call(cmd.Context(), bus.OpReleasesList, q, &recs); err != nil {
				return err
			}
			if nf.json {
				return printJSON(cmd.OutOrStdout(), recs)
			}
			w := cmd.OutOrStdout()
			for _, r := range recs {
				fmt.Fprintf(w, "%s  #%d  %s  hold %s  control %s  by %s (%s)  notify %s", r.ReleasedAt.UTC().Format(time.RFC3339), r.Seq, r.Path, r.HoldID, r.ControlID, r.Actor, r.Role, r.Notify)
				if r.Retracts != "" {
					fmt.Fprintf(w, "  retracts %s", r.Retracts)
				}
				fmt.Fprintln(w)
			}
			fmt.Fprintf(w, "%d feed records\n", len(recs))
			return nil
		},
	}
	nf.register(cmd)
	cmd.Flags().StringVar(&since, "since", "", "only records stored at or after this time: "+httpapi.WhenFormats)
	cmd.Flags().StringVar(&path, "path", "", "only this release path (immediate, acknowledged, override, deadline, patient-delay-ended, patient-revoked, correction, reevaluated, retraction)")
	cmd.Flags().IntVar(&q.Limit, "limit", 0, "at most this many records (default and maximum 10000)")
	return cmd
}

// parseSince reads --since by the API's rule (httpapi.ParseWhen).
func parseSince(s string, now time.Time) (time.Time, error) {
	t, _, err := httpapi.ParseWhen(s, now)
	if err != nil {
		return time.Time{}, fmt.Errorf("--since: %w", err)
	}
	return t, nil
}

// writeAudit prints one line per event, then its tags and bases for decisions.
func writeAudit(w io.Writer, evs []audit.Event) {
	for _, e := range evs {
		var b strings.Builder
		fmt.Fprintf(&b, "%s  #%d  %s", e.At.UTC().Format(time.RFC3339), e.Seq, e.Kind)
		add := func(k, v string) {
			if v != "" {
				fmt.Fprintf(&b, "  %s=%s", k, v)
			}
		}
		add("hold", e.HoldID)
		add("control", e.ControlID)
		add("action", e.Action)
		add("disposition", e.Disposition)
		if e.From != "" || e.To != "" {
			add("transition", string(e.From)+"->"+string(e.To))
		}
		add("path", string(e.Path))
		add("actor", e.Actor)
		add("role", e.Role)
		if e.Reason != "" {
			fmt.Fprintf(&b, "  reason=%q", e.Reason)
		}
		add("harm_type", e.HarmType)
		if e.DeadSeq != 0 {
			add("dead_seq", strconv.FormatUint(e.DeadSeq, 10))
		}
		add("ruleset", e.RulesetVersion)
		if !e.Deadline.IsZero() {
			add("deadline", e.Deadline.UTC().Format(time.RFC3339))
		}
		add("notify", e.Notify)
		fmt.Fprintln(w, b.String())
		for _, t := range e.Tags {
			fmt.Fprintf(w, "    tag %s (%d evidence)\n", t.Tag, len(t.Evidence))
		}
		for _, bs := range e.Bases {
			fmt.Fprintf(w, "    basis %s %s\n", bs.Kind, string(bs.Detail))
		}
	}
	fmt.Fprintf(w, "%d event(s)\n", len(evs))
}
