# Nightcall in a container, for the distributed mode of docker-compose.yml.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -o /nightcall ./cmd/nightcall

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates tzdata && rm -rf /var/lib/apt/lists/*
COPY --from=build /nightcall /usr/local/bin/nightcall
USER 65534:65534
EXPOSE 8080
ENTRYPOINT ["nightcall"]
CMD ["serve"]
