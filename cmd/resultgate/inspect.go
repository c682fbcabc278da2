package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/resultgate/resultgate/hl7"
)

func newInspectCmd() *cobra.Command {
	var (
		get    string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "inspect FILE|-",
		Short: "Print each message as an annotated tree, or the value at a path",
		Long: `inspect prints every message in FILE (batches and back-to-back messages are split)
as an annotated tree: segment, field number, field name where known, unescaped value.

--get PATH prints the unescaped value at PATH for every occurrence of the segment,
one per line. PATH is SEG-F, SEG-F.C or SEG-F.C.S with an optional repetition
SEG-F(R) and segment occurrence SEG(N)-F, all 1-based; MSH-1 is the field separator
and MSH-2 the encoding characters, as in the standard. --json prints the tree (or the
values) as JSON, one object per message per line.

A --get PATH whose segment (or segment occurrence) a message does not have is
reported on standard error for that message, and inspect exits with status 1
(as grep does when it finds nothing); a present but empty field prints an empty
line. A malformed PATH is a usage error (status 2).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var path hl7.Path
			if get != "" {
				var err error
				if path, err = hl7.ParsePath(get); err != nil {
					return &exitError{code: 2, err: err}
				}
			}
			raw, err := readMessages(cmd.InOrStdin(), cmd.ErrOrStderr(), args)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			out := cmd.OutOrStdout()
			enc := json.NewEncoder(out)
			failed, missing := 0, 0
			for i, b := range raw {
				m, err := hl7.Parse(b)
				if err != nil {
					failed++
					fmt.Fprintf(cmd.ErrOrStderr(), "message %d: %v\n", i+1, err)
					continue
				}
				var vals []string
				if get != "" {
					vals, _ = m.GetAll(get)
					if len(vals) == 0 {
						missing++
						fmt.Fprintf(cmd.ErrOrStderr(), "message %d (control ID %s): %s\n", i+1, m.ControlID(), notFound(m, path))
					}
				}
				switch {
				case get != "" && asJSON:
					_ = enc.Encode(map[string]any{"control_id": m.ControlID(), "path": get, "values": nonNil(vals)})
				case get != "":
					for _, v := range vals {
						fmt.Fprintln(out, v)
					}
				case asJSON:
					_ = enc.Encode(hl7.Describe(m))
				default:
					if len(raw) > 1 {
						fmt.Fprintf(out, "# message %d of %d\n", i+1, len(raw))
					}
					fmt.Fprint(out, hl7.Describe(m).String())
				}
			}
			if failed > 0 {
				return &exitError{code: 1, err: fmt.Errorf("%d of %d messages could not be parsed", failed, len(raw))}
			}
			if missing > 0 {
				return &exitError{code: 1, err: fmt.Errorf("%s: not found in %d of %d message(s)", get, missing, len(raw))}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&get, "get", "", "print the value at PATH (e.g. PID-3.1, OBX-5, MSH-9.2, OBX(2)-3(1).1) for every occurrence")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// notFound says which part of path m lacks: the segment, or the occurrence
// asked for and how many there are.
func notFound(m *hl7.Message, p hl7.Path) string {
	n := len(m.All(p.Segment))
	switch {
	case n == 0:
		return fmt.Sprintf("no %s segment", p.Segment)
	case n == 1:
		return fmt.Sprintf("no %s(%d): the message has 1 %s segment", p.Segment, p.Occurrence, p.Segment)
	default:
		return fmt.Sprintf("no %s(%d): the message has %d %s segments", p.Segment, p.Occurrence, n, p.Segment)
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
