package main

import (
	"fmt"
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
  admin       posts Consents, reads the audit trail; releases nothing
The token is printed once; the tokens file keeps only its SHA-256 hash. A running
resultgate picks new tokens up within a second.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := auth.ParseRole(role)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			path := tokensFile
			if path == "" {
				cfg, err := loadAll(cfgFile)
				if err != nil {
					return &exitError{code: 2, err: err}
				}
				if cmd.Flags().Changed("data") {
					cfg.DataDir = dataDir
				}
				ac, err := app.AuthConfig(cfg)
				if err != nil {
					return &exitError{code: 2, err: err}
				}
				path = ac.TokensFile
			}
			tok, err := auth.NewToken(path, name, r, provider, time.Now())
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			fmt.Fprintln(cmd.OutOrStdout(), tok)
			fmt.Fprintf(cmd.ErrOrStderr(), "issued a %s token for %q (hash stored in %s); it will not be shown again\n", r, name, path)
			return nil
		},
	}
	f := newCmd.Flags()
	f.StringVar(&cfgFile, "config", "", "configuration file (for auth.tokens_file and data_dir)")
	f.StringVar(&dataDir, "data", "./data", "data directory (the tokens file defaults to DATA/tokens.yaml)")
	f.StringVar(&tokensFile, "tokens-file", "", "tokens file to write (overrides the configuration)")
	f.StringVar(&role, "role", "", "clinician, oncall, compliance or admin")
	f.StringVar(&name, "name", "", "who the token is for (shown in the audit trail)")
	f.StringVar(&provider, "provider", "", "clinician's provider ID (ORC-12/OBR-16)")
	_ = newCmd.MarkFlagRequired("role")
	_ = newCmd.MarkFlagRequired("name")
	cmd.AddCommand(newCmd)
	return cmd
}
