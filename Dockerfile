# quaycast in a container: `docker compose up` runs it beside a NATS server.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -o /quaycast ./cmd/quaycast

FROM gcr.io/distroless/static-debian12
COPY --from=build /quaycast /quaycast
ENTRYPOINT ["/quaycast"]
# Beyond loopback the API needs access control: pass QUAYCAST_ADMIN_TOKEN.
CMD ["serve", "--listen", "0.0.0.0:8080", "--data-dir", "/data"]
