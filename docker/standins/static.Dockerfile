# Stand-in for gcr.io/distroless/static-debian13:nonroot
# (scripts/docker/base-images.sh): from scratch, only the files a static Go
# binary reads, taken from the Debian stand-in: CA certificates, tzdata,
# netbase's /etc/services and /etc/protocols, and /etc/passwd and /etc/group
# with root, nobody and nonroot (uid/gid 65532), whose home it is. No shell,
# no package manager, no libc.
ARG DEBIAN_IMAGE
FROM ${DEBIAN_IMAGE} AS files
RUN set -eu; r=/rootfs; \
    mkdir -p "$r/etc/ssl/certs" "$r/usr/share" "$r/home/nonroot" "$r/root" "$r/tmp"; \
    cp /etc/ssl/certs/ca-certificates.crt "$r/etc/ssl/certs/"; \
    cp -a /usr/share/zoneinfo "$r/usr/share/"; \
    cp /etc/services /etc/protocols "$r/etc/"; \
    printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' \
      'nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin' \
      'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' >"$r/etc/passwd"; \
    printf '%s\n' 'root:x:0:' 'nobody:x:65534:' 'nonroot:x:65532:' >"$r/etc/group"; \
    printf 'hosts: files dns\n' >"$r/etc/nsswitch.conf"; \
    printf '%s\n' 'PRETTY_NAME="rickmorty static stand-in (distroless/static equivalent)"' \
      'ID=rickmorty-static' >"$r/etc/os-release"; \
    chown 65532:65532 "$r/home/nonroot"; \
    chmod 700 "$r/root" "$r/home/nonroot"; \
    chmod 1777 "$r/tmp"

FROM scratch
COPY --from=files /rootfs/ /
ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 65532:65532
WORKDIR /home/nonroot
