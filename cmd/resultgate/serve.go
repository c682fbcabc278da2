package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/resultgate/resultgate/app"
	"github.com/resultgate/resultgate/config"
	"github.com/resultgate/resultgate/internal/logging"
)

func newServeCmd() *cobra.Command {
	var (
		cfgFile                                  string
		dataDir, mllpAddr, httpAddr, natsAddr    string
		natsURL, natsCreds, durability, logLevel string
		logFormat, roles                         string
		logPHI                                   bool
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run resultgate: MLLP intake, routing pipeline, HTTP API (embedded NATS unless --nats-url)",
		Long: `serve starts an embedded NATS server with JetStream (or connects to --nats-url), the
MLLP listener, the routing pipeline and the HTTP API with health (/healthz, /readyz)
and metrics (/metrics). --roles runs a part of them only (intake, pipeline, api),
so that each can run on its own hosts against one NATS cluster. Flags override
the configuration file. SIGTERM or SIGINT stops it in order: no new MLLP
messages, in-flight stores finish and are acknowledged, NATS drains, the
embedded server stops.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg := config.Default()
			if cfgFile != "" {
				var err error
				if cfg, err = config.Load(cfgFile); err != nil {
					return &exitError{code: 2, err: err}
				}
			}
			f := cmd.Flags()
			set := func(name string, dst *string, v string) {
				if f.Changed(name) {
					*dst = v
				}
			}
			set("data", &cfg.DataDir, dataDir)
			set("mllp-addr", &cfg.MLLP.Addr, mllpAddr)
			set("http-addr", &cfg.HTTP.Addr, httpAddr)
			set("nats-addr", &cfg.NATS.Listen, natsAddr)
			set("nats-url", &cfg.NATS.URL, natsURL)
			set("nats-creds", &cfg.NATS.CredsFile, natsCreds)
			set("log-level", &cfg.Log.Level, logLevel)
			set("log-format", &cfg.Log.Format, logFormat)
			if f.Changed("durability") {
				cfg.Durability = config.Durability(durability)
			}
			if f.Changed("log-phi") {
				cfg.Log.LogPHI = logPHI
			}
			if f.Changed("roles") {
				cfg.Roles = config.ParseRoles(roles)
			}
			if err := cfg.Validate(); err != nil {
				return &exitError{code: 2, err: err}
			}
			log, err := logging.New(os.Stderr, cfg.Log.Level, cfg.Log.Format)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			if cfg.Log.LogPHI {
				log.Warn().Msg("log_phi is on: message content will be logged and contains PHI")
			}
			return app.New(cfg, log).Run(cmd.Context())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&cfgFile, "config", "", "YAML configuration file (see check-config)")
	fl.StringVar(&dataDir, "data", "./data", "data directory (embedded JetStream store, partition key)")
	fl.StringVar(&mllpAddr, "mllp-addr", ":2575", "MLLP listen address")
	fl.StringVar(&httpAddr, "http-addr", "127.0.0.1:8080", "HTTP listen address (API, web page, /healthz, /readyz, /metrics)")
	fl.StringVar(&natsAddr, "nats-addr", "127.0.0.1:4222", "embedded NATS client listen address")
	fl.StringVar(&natsURL, "nats-url", "", "use this NATS cluster instead of the embedded server")
	fl.StringVar(&natsCreds, "nats-creds", "", "NATS credentials file for --nats-url")
	fl.StringVar(&durability, "durability", "fsync", "fsync: an ACK means on disk; os: JetStream default flushing")
	fl.StringVar(&logLevel, "log-level", "info", "trace, debug, info, warn or error")
	fl.StringVar(&logFormat, "log-format", "auto", "auto, json or console")
	fl.BoolVar(&logPHI, "log-phi", false, "log message content: CONTAINS PHI, for local debugging only")
	fl.StringVar(&roles, "roles", "intake,pipeline,api", "the parts to run, comma-separated: intake (MLLP), pipeline (classify, deadlines, reconciler, forwarder), api (HTTP API, web page, NATS API); /healthz, /readyz, /metrics always")
	return cmd
}
