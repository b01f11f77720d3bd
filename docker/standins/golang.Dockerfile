# Stand-in for golang:<GO_VERSION> (scripts/docker/base-images.sh): the
# Debian stand-in with the Go release that GOTOOLCHAIN downloads, the
# golang.org/toolchain module (the whole distribution, from the Go module
# proxy), which is the build context. The environment is the official
# image's: GOPATH=/go, GOTOOLCHAIN=local, go and GOPATH/bin on PATH.
ARG DEBIAN_IMAGE
FROM ${DEBIAN_IMAGE}
ARG GO_VERSION
ENV GOLANG_VERSION=${GO_VERSION} \
    GOTOOLCHAIN=local \
    GOPATH=/go \
    PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# The machine's own CA certificates (base-images.sh passes those of
# /usr/local/share/ca-certificates, e.g. a TLS-intercepting egress proxy's),
# so that the builds reach the module proxy as the host does.
ARG LOCAL_CA_CERTS=""
RUN if [ -n "$LOCAL_CA_CERTS" ]; then \
      printf '%s\n' "$LOCAL_CA_CERTS" >/usr/local/share/ca-certificates/machine-local.crt \
      && update-ca-certificates; \
    fi
COPY . /usr/local/go/
RUN test "$(go env GOVERSION)" = "go${GO_VERSION}" \
 && mkdir -p "$GOPATH/src" "$GOPATH/bin" \
 && chmod -R 1777 "$GOPATH"
WORKDIR $GOPATH
