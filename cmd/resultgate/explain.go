package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/resultgate/resultgate/app"
	"github.com/resultgate/resultgate/config"
	"github.com/resultgate/resultgate/fhirmap"
	"github.com/resultgate/resultgate/hl7"
	"github.com/resultgate/resultgate/policy"
	"github.com/resultgate/resultgate/router/dead"
	"github.com/resultgate/resultgate/router/intake"
	"github.com/resultgate/resultgate/router/pipeline"
)

// maxExplainInput bounds the file explain reads (every read is bounded).
const maxExplainInput = 64 << 20

// explainOptions are the flags of `resultgate explain`.
type explainOptions struct {
	configFile      string
	consentFile     string
	at              string
	priorMalignancy bool
	jsonOut         bool
}

// newExplainCmd returns `resultgate explain`: for each message in a file, the
// tags with their evidence and the release decision with its bases, deadline,
// notification and note.
func newExplainCmd() *cobra.Command {
	var o explainOptions
	cmd := &cobra.Command{
		Use:   "explain [--config FILE] [--consent FILE] [--at RFC3339] [--prior-malignancy] [--json] FILE",
		Short: "Show the tags, evidence and release decision for each message in an HL7 file",
		Long: `explain reads HL7 v2 messages (one, several back to back, or a batch), runs the
classifier and the release decision exactly as the router would, and prints for each
message the tags with their evidence and the decision: release, hold or withdraw, the
lawful bases with their end conditions and deadlines, the hard deadline, how the patient
is notified and the plain-language note.

--config reads the policy: and rules: sections of a resultgate configuration file; --consent applies
a patient's FHIR R4 Consent (see docs/CONSENT.md) to every message; --at sets the
receipt and decision time (default now); --prior-malignancy says the patient has a
malignancy on record (so no new-cancer tag). --json prints one JSON object per message,
one per line.

The output contains message content (matched text, notes): it is PHI. Do not paste it
into tickets or logs.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runExplain(cmd.OutOrStdout(), args[0], o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.configFile, "config", "", "resultgate configuration file (its policy: and rules: sections are used)")
	f.StringVar(&o.consentFile, "consent", "", "FHIR R4 Consent (JSON) holding the patient's preference")
	f.StringVar(&o.at, "at", "", "receipt and decision time, RFC 3339 (default now)")
	f.BoolVar(&o.priorMalignancy, "prior-malignancy", false, "the patient has a malignancy on record")
	f.BoolVar(&o.jsonOut, "json", false, "print one JSON object per message, one per line")
	return cmd
}

// staticHistory answers every patient the same way.
type staticHistory bool

func (h staticHistory) PriorMalignancy(string) bool { return bool(h) }

// explainError is printed (as JSON with --json) for a message that could not
// be explained; the other messages are still explained.
type explainError struct {
	Index     int    `json:"index"`
	ControlID string `json:"control_id,omitempty"`
	Error     string `json:"error"`
}

// explainRefused is printed for a message serve's intake refuses: what serve
// would answer, and nothing decided.
type explainRefused struct {
	Index       int    `json:"index"`
	ControlID   string `json:"control_id,omitempty"`
	ServeAnswer string `json:"serve_answer"`
}

// explainAccepted is the JSON of an explained message: the explanation and
// what serve would answer.
type explainAccepted struct {
	*policy.Explanation
	ServeAnswer string `json:"serve_answer"`
}

// refusalText says what serve answers a refused message: the ACK code (AR,
// or CR in enhanced mode) and the ERR segment's code and text.
func refusalText(m *hl7.Message, ref intake.Refusal) string {
	code := "AR"
	if msh := m.MSH(); msh.AcceptAckType != "" || msh.AppAckType != "" {
		code = "CR"
	}
	return fmt.Sprintf("%s with ERR %d (%s): %s", code, ref.Detail.Code, ref.Reason, ref.Detail.Message)
}

// serveAnswer says what serve does with a message its intake accepts: AA
// (stored), then the decision below; and whether a release could be
// published at all (the FHIR mapping refuses some results: those are
// dead-lettered, not delivered), or whether the result goes to triage.
func serveAnswer(raw []byte, x *policy.Explanation, loc *time.Location, now time.Time) string {
	if slices.Contains(x.Decision.Warnings, unattributedWarning) {
		return "AA (stored); not decided: triaged as unattributed (no usable patient identifier), never released"
	}
	m, err := hl7.Parse(raw)
	if err != nil {
		return "AA (stored)"
	}
	if _, err := fhirmap.Bundle(m, fhirmap.Release{HoldID: "explain", Reason: fhirmap.ReasonImmediate, Actor: "resultgate", ActorRole: "system", At: now},
		fhirmap.Options{PatientRef: "Patient/explain", Location: loc}); err != nil {
		return "AA (stored); not delivered: dead-lettered when decided (" + dead.SafeDetail(err, "the FHIR mapping refuses it") + ")"
	}
	return "AA (stored); decided as below"
}

func runExplain(w io.Writer, path string, o explainOptions) error {
	now := time.Now()
	if o.at != "" {
		t, err := time.Parse(time.RFC3339, o.at)
		if err != nil {
			return fmt.Errorf("--at: want RFC 3339 such as 2026-03-02T10:00:00-05:00: %w", err)
		}
		now = t
	}
	var cfg policy.Config
	rs := policy.DefaultRuleSet()
	full := config.Default()
	if o.configFile != "" {
		data, err := readBounded(o.configFile, maxConfigFile)
		if err != nil {
			return err
		}
		full, err = config.Parse(data)
		if err != nil {
			return fmt.Errorf("invalid configuration:\n%w", configError(full, o.configFile, err))
		}
		if cfg, rs, err = app.PolicyParts(full); err != nil {
			return fmt.Errorf("invalid policy configuration:\n%w", configError(full, o.configFile, err))
		}
	}
	engine, err := policy.NewEngine(cfg)
	if err != nil {
		return fmt.Errorf("invalid policy configuration:\n%w", err)
	}
	var pref *policy.Preference
	if o.consentFile != "" {
		b, err := readBounded(o.consentFile, policy.MaxConsentBytes)
		if err != nil {
			return err
		}
		if pref, err = policy.ParseConsent(b); err != nil {
			return fmt.Errorf("%s: %w", o.consentFile, err)
		}
	}
	classifier, err := policy.NewClassifier(rs)
	if err != nil {
		return fmt.Errorf("rule set: %w", err)
	}
	data, err := readBounded(path, maxExplainInput)
	if err != nil {
		return err
	}
	msgs, err := hl7.SplitMessages(data)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if len(msgs) == 0 {
		return fmt.Errorf("%s: no messages", path)
	}
	// The intake's own acceptance checks, with the configuration's accepted
	// types and facilities: explain says what serve would answer.
	checker := intake.New(nil, intake.Config{
		AcceptTypes: full.Intake.AcceptTypes, AllowedFacilities: full.Intake.AllowedFacilities,
		PartitionSecret: []byte("explain"), AckMode: intake.AckMode(full.Intake.AckMode),
	}, zerolog.Nop())
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	failed := 0
	for i, raw := range msgs {
		if m, err := hl7.Parse(raw); err == nil {
			if ref, ok := checker.Check(m); !ok {
				r := explainRefused{Index: i + 1, ControlID: hl7.TruncateValue(m.ControlID(), hl7.MaxHeaderValue, 0), ServeAnswer: refusalText(m, ref)}
				if o.jsonOut {
					if err := enc.Encode(r); err != nil {
						return err
					}
				} else {
					fmt.Fprintf(w, "Message %d (control ID %s)\nServe would answer: %s\nNot stored, not decided.\n\n", r.Index, r.ControlID, r.ServeAnswer)
				}
				continue
			}
		}
		x, loc, err := explainOne(raw, engine, classifier, pref, staticHistory(o.priorMalignancy), now)
		if err != nil {
			failed++
			e := explainError{Index: i + 1, Error: err.Error()}
			if x != nil {
				e.ControlID = x.ControlID
			}
			if o.jsonOut {
				if err := enc.Encode(e); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(w, "Message %d: cannot explain: %s\n\n", e.Index, e.Error)
			}
			continue
		}
		answer := serveAnswer(raw, x, loc, now)
		if o.jsonOut {
			if err := enc.Encode(explainAccepted{Explanation: x, ServeAnswer: answer}); err != nil {
				return err
			}
			continue
		}
		fmt.Fprintf(w, "Serve would answer: %s\n", answer)
		if err := x.WriteText(w, loc); err != nil {
			return err
		}
		if i < len(msgs)-1 {
			fmt.Fprintln(w)
		}
	}
	if failed > 0 {
		return &exitError{code: 2, err: fmt.Errorf("%d of %d messages could not be explained", failed, len(msgs))}
	}
	return nil
}

// explainOne explains one message, and returns the zone of its sending
// facility, in which its timestamps without an offset were read and its
// times are shown.
func explainOne(raw []byte, e *policy.Engine, c *policy.Classifier, pref *policy.Preference, h policy.History, now time.Time) (*policy.Explanation, *time.Location, error) {
	m, err := hl7.Parse(raw)
	if err != nil {
		return nil, nil, err
	}
	fac := m.MSH().SendingFacility.NamespaceID
	loc := e.LocationFor(fac)
	r, err := policy.FromHL7(m, loc)
	if err != nil {
		return &policy.Explanation{ControlID: m.ControlID()}, loc, err
	}
	r.ReceivedAt = now
	r.Jurisdiction = e.JurisdictionFor(r, fac)
	cls := c.Classify(r, h)
	d := e.Decide(policy.Input{
		Report: r, Classification: cls, Preference: pref,
		Facility: fac, Now: now,
	})
	x := policy.Explain(r, cls, d)
	if !pipeline.Attributable(r.PatientID) {
		// The router never applies this decision: say what it does instead.
		x.Decision.Warnings = append(x.Decision.Warnings, unattributedWarning)
	}
	return &x, loc, nil
}

// unattributedWarning is explain's warning for a message without a usable
// patient identifier, whatever the policy decided.
const unattributedWarning = "not applied by resultgate serve: the message names no usable patient identifier (PID-3, or PID-2 in its stead, has no ID number), " +
	"so it is never held or released; it is dead-lettered for triage (reason unattributed) and on-call is notified"

func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, limit)
	}
	return b, nil
}
