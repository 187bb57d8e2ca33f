# quaycast in a container: the gateway with its embedded NATS, its data in the volume /data.
#
#   docker build -t quaycast .
#   export QUAYCAST_ADMIN_TOKEN="$(openssl rand -hex 24)"
#   docker run -d --name quaycast -e QUAYCAST_ADMIN_TOKEN -p 8080:8080 -p 4222:4222 -v quaycast-data:/data quaycast
#
# QUAYCAST_ADMIN_TOKEN is required: the API listens beyond loopback here, so without the token
# quaycast stops at once and its log says why. The embedded NATS listens on all interfaces for
# publishers, each with a credential of its own (`quaycast publishers add`); add TLS with
# QUAYCAST_NATS_TLS_CERT and QUAYCAST_NATS_TLS_KEY (files mounted into the container). See
# README "In a container". `docker compose up` runs two of it on a three-node NATS cluster instead.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /out/quaycast ./cmd/quaycast && mkdir /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/quaycast /quaycast
# /data belongs to the image's user, so a new named volume mounted there does too (a bind mount
# keeps its owner on the host: chown it to 65532).
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
ENV QUAYCAST_LISTEN=0.0.0.0:8080 \
    QUAYCAST_NATS_LISTEN=0.0.0.0:4222 \
    QUAYCAST_DATA_DIR=/data
VOLUME /data
# The HTTP API, and the embedded NATS for publishers.
EXPOSE 8080 4222
ENTRYPOINT ["/quaycast"]
CMD ["serve"]
