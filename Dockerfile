# syntax=docker/dockerfile:1
# Multi-stage build: a static resultgate binary on a minimal, non-root base.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/resultgate ./cmd/resultgate \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/resultgate /usr/local/bin/resultgate
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
WORKDIR /data
VOLUME ["/data"]
# 2575 MLLP, 8080 HTTP API/web/metrics, 4222 embedded NATS client port.
EXPOSE 2575 8080 4222
ENTRYPOINT ["/usr/local/bin/resultgate"]
CMD ["serve", "--data", "/data", "--http-addr", "0.0.0.0:8080", "--nats-addr", "0.0.0.0:4222"]
