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
values) as JSON, one object per message per line.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if get != "" {
				if _, err := hl7.ParsePath(get); err != nil {
					return &exitError{code: 2, err: err}
				}
			}
			raw, err := readMessages(cmd.InOrStdin(), cmd.ErrOrStderr(), args)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			out := cmd.OutOrStdout()
			enc := json.NewEncoder(out)
			failed := 0
			for i, b := range raw {
				m, err := hl7.Parse(b)
				if err != nil {
					failed++
					fmt.Fprintf(cmd.ErrOrStderr(), "message %d: %v\n", i+1, err)
					continue
				}
				switch {
				case get != "" && asJSON:
					vals, _ := m.GetAll(get)
					_ = enc.Encode(map[string]any{"control_id": m.ControlID(), "path": get, "values": nonNil(vals)})
				case get != "":
					vals, _ := m.GetAll(get)
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
			return nil
		},
	}
	cmd.Flags().StringVar(&get, "get", "", "print the value at PATH (e.g. PID-3.1, OBX-5, MSH-9.2, OBX(2)-3(1).1) for every occurrence")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
