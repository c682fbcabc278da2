// Package api serves the NATS request/reply API (resultgate.api.<operation>,
// operations declared in router/bus) over a pipeline.Service, for operators'
// CLIs and integrations that speak NATS rather than HTTP; Client calls it.
// app starts it beside the pipeline and stops it first.
//
// It may import router/pipeline and the packages below it.
package api
