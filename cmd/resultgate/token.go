package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/resultgate/resultgate/app"
	"github.com/resultgate/resultgate/auth"
)

func newTokenCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "token", Short: "Manage API bearer tokens"}
	var (
		cfgFile, dataDir, tokensFile, role, name, provider string
	)
	newCmd := &cobra.Command{
		Use:   "new --role ROLE --name NAME [--provider ID]",
		Short: "Issue a bearer token; it is printed once and only its hash is stored",
		Long: `token new issues a bearer token for the HTTP API and the web page. Roles:
  clinician   releases holds where they are the ordering provider (--provider: their
              ID as senders put it in ORC-12/OBR-16) or a listed covering clinician
  oncall      overrides any hold, with a reason
  compliance  reads the audit trail and reports; releases nothing
  admin       issues and revokes tokens (GET/POST /api/tokens, DELETE /api/tokens/NAME),
              posts Consents, reads the audit trail and reports; releases nothing
The token is printed once; the tokens file keeps only its SHA-256 hash. A running
resultgate picks new tokens up within a second.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := auth.ParseRole(role)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			path, err := resolveTokensFile(cmd, cfgFile, dataDir, tokensFile)
			if err != nil {
				return err
			}
			tok, err := auth.NewToken(path, name, r, provider, time.Now())
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			fmt.Fprintln(cmd.OutOrStdout(), tok)
			fmt.Fprintf(cmd.ErrOrStderr(), "issued %s token for %q (hash stored in %s); it will not be shown again\n", r.Article(), name, path)
			return nil
		},
	}
	f := newCmd.Flags()
	f.StringVar(&role, "role", "", "clinician, oncall, compliance or admin")
	f.StringVar(&name, "name", "", "who the token is for (shown in the audit trail)")
	f.StringVar(&provider, "provider", "", "clinician's provider ID (ORC-12/OBR-16)")
	_ = newCmd.MarkFlagRequired("role")
	_ = newCmd.MarkFlagRequired("name")

	listCmd := &cobra.Command{
		Use:   "list",
		Short: "List the issued tokens (name, role, provider, created, disabled; never the hashes)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path, err := resolveTokensFile(cmd, cfgFile, dataDir, tokensFile)
			if err != nil {
				return err
			}
			entries, err := auth.ReadTokens(path)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tROLE\tPROVIDER\tCREATED\tSTATUS")
			for _, e := range entries {
				status := "active"
				if e.Disabled {
					status = "revoked"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.Name, e.Role, dash(e.ProviderID), e.Created.UTC().Format(time.RFC3339), status)
			}
			return tw.Flush()
		},
	}
	revokeCmd := &cobra.Command{
		Use:   "revoke NAME",
		Short: "Revoke every token issued to NAME (kept in the file for the record, refused from then on)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := resolveTokensFile(cmd, cfgFile, dataDir, tokensFile)
			if err != nil {
				return err
			}
			n, err := auth.DisableToken(path, args[0])
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			if n == 0 {
				return fmt.Errorf("no active token named %q in %s", args[0], path)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "revoked %d token(s) of %q; a running resultgate refuses them within a second\n", n, args[0])
			return nil
		},
	}
	for _, c := range []*cobra.Command{newCmd, listCmd, revokeCmd} {
		f := c.Flags()
		f.StringVar(&cfgFile, "config", "", "configuration file (for auth.tokens_file and data_dir)")
		f.StringVar(&dataDir, "data", "./data", "data directory (the tokens file defaults to DATA/tokens.yaml)")
		f.StringVar(&tokensFile, "tokens-file", "", "tokens file (overrides the configuration)")
	}
	cmd.AddCommand(newCmd, listCmd, revokeCmd)
	return cmd
}

// resolveTokensFile is --tokens-file, else auth.tokens_file from --config, else
// DATA/tokens.yaml.
func resolveTokensFile(cmd *cobra.Command, cfgFile, dataDir, tokensFile string) (string, error) {
	if tokensFile != "" {
		return tokensFile, nil
	}
	cfg, err := loadAll(cfgFile)
	if err != nil {
		return "", &exitError{code: 2, err: err}
	}
	if cmd.Flags().Changed("data") {
		cfg.DataDir = dataDir
	}
	ac, err := app.AuthConfig(cfg)
	if err != nil {
		return "", &exitError{code: 2, err: err}
	}
	return ac.TokensFile, nil
}
