# Static edge binary on a minimal base, running as a non-root user.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/edge . \
 && mkdir -p /out/state /out/properties

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/edge /usr/local/bin/edge
COPY deploy/edge.docker.yaml /etc/edge/edge.yaml
# The image has no shell to mkdir/chown with: the directories come from the
# build stage. Docker fills a new volume from the image's directory,
# ownership included, so the non-root user (65532) can write its store.
COPY --from=build --chown=65532:65532 --chmod=0700 /out/state /var/lib/edge
COPY --from=build /out/properties /etc/edge/properties
# Docker (20.10+) lets a non-root process bind ports below 1024 in a
# container (net.ipv4.ip_unprivileged_port_start=0), so :80 and :443 work.
USER nonroot:nonroot
VOLUME ["/var/lib/edge"]
EXPOSE 80 443
ENTRYPOINT ["/usr/local/bin/edge"]
CMD ["serve", "--config", "/etc/edge/edge.yaml"]
