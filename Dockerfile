# syntax=docker/dockerfile:1
# stompgate container image: a static binary on distroless, running as nonroot.
#
#   docker build --build-arg VERSION=$(git describe --tags --always --dirty) \
#                --build-arg COMMIT=$(git rev-parse --short HEAD) -t stompgate .
#   docker run -p 61613:61613 -e STOMPGATE_AMQP_URL=amqp://user:pass@broker:5672/ stompgate
#
# Not used by the tests or CI (there is no Docker engine there); see
# docker-compose.yml for RabbitMQ plus stompgate.

FROM golang:1.26 AS build
ARG VERSION=dev
ARG COMMIT=unknown
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath \
        -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" \
        -o /out/stompgate ./cmd/stompgate

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/stompgate /usr/local/bin/stompgate
USER nonroot:nonroot
EXPOSE 61613
# The config file is optional: mount one and set STOMPGATE_CONFIG, or use
# STOMPGATE_* variables (STOMPGATE_AMQP_URL, STOMPGATE_LISTEN, STOMPGATE_LOG_LEVEL, ...).
ENTRYPOINT ["/usr/local/bin/stompgate", "serve"]
