# syntax=docker/dockerfile:1
#
# crossgate as a container: a fully static binary on an empty base image,
# running as a non-root user, serving the demo configuration by default.
#
#   docker build -t crossgate .
#   docker run --rm -p 8080:8080 crossgate          # the demo, on :8080
#   docker run --rm -p 8080:8080 -v "$PWD/gateway.toml:/etc/crossgate/crossgate.toml:ro" crossgate
#
# Keep the admin port (9090) unpublished: it is for probes and Prometheus
# inside the host or cluster, never for the internet (docs/deployment.md).
#
# scripts/container-smoke.sh builds and runs the binary exactly as below
# (same target, same RUSTFLAGS, same configuration) in the test suite.

ARG RUST_IMAGE=rust:1.95-bookworm
ARG BUSYBOX_IMAGE=busybox:1.36.1-musl

FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY . .
# No musl target is needed: glibc's static libraries ship with the gnu
# target, and crt-static links them in. crossgate resolves no host names
# through NSS at run time other than upstream hosts, which static glibc
# resolves with /etc/hosts and DNS (resolv.conf) only.
ENV RUSTFLAGS="-C target-feature=+crt-static"
RUN cargo build --release --locked -p crossgate --target x86_64-unknown-linux-gnu \
 && install -D target/x86_64-unknown-linux-gnu/release/crossgate /out/crossgate \
 && install -D deploy/crossgate.toml /out/crossgate.toml
# Refuse to produce an image whose binary would need a libc the base lacks.
RUN file /out/crossgate | grep -q 'static.*linked' \
 && ldd /out/crossgate 2>&1 | grep -qE 'statically linked|not a dynamic executable'

# The HEALTHCHECK needs an HTTP client inside the image; the base is empty,
# so it gets BusyBox's static wget (one 1 MB file, no shell is installed).
FROM ${BUSYBOX_IMAGE} AS busybox

FROM scratch
COPY --from=busybox /bin/busybox /bin/wget
COPY --from=build /out/crossgate /usr/local/bin/crossgate
COPY --from=build /out/crossgate.toml /etc/crossgate/crossgate.toml
# A numeric uid/gid (there is no /etc/passwd), so Kubernetes can verify
# runAsNonRoot; 65532 is the conventional "nonroot" id.
USER 65532:65532
EXPOSE 8080 9090
# Liveness only: /healthz says the process serves; /readyz is for load balancers.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["/bin/wget", "-q", "-T", "2", "-O", "/dev/null", "http://127.0.0.1:9090/healthz"]
ENTRYPOINT ["/usr/local/bin/crossgate"]
CMD ["serve", "--config", "/etc/crossgate/crossgate.toml"]
