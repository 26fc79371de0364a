# Switchboard: one image with every stage binary (sb-ingress, sb-verifier, sb-writer, and
# whatever sb-* targets CMake knows); the container's command picks the stage:
#   docker run switchboard/switchboard sb-writer
#
# Bases (docs/compose.md): by default the ordinary Debian images, and each stage installs
# its packages with apt-get. Without a registry, scripts/build-base-images makes
# switchboard/base-build:bookworm and switchboard/base-runtime:bookworm with the packages
# already in them; then no apt-get runs (APT=auto notices that; APT=1 forces it, APT=0
# forbids it):
#   docker-compose build --build-arg BUILD_BASE=switchboard/base-build:bookworm \
#                        --build-arg RUNTIME_BASE=switchboard/base-runtime:bookworm
# Plain Dockerfile syntax only (no heredocs, no RUN --mount), so the classic builder of
# an offline Docker engine works as well as BuildKit.
ARG BUILD_BASE=debian:bookworm
ARG RUNTIME_BASE=debian:bookworm-slim

# ---- build: compile every sb-* binary (RelWithDebInfo, no tests) -------------------------
FROM ${BUILD_BASE} AS build
ARG APT=auto
ARG JOBS=2
ENV DEBIAN_FRONTEND=noninteractive
RUN set -eu; \
    need=1; \
    if [ "$APT" = auto ] && command -v cmake >/dev/null && command -v cc >/dev/null \
       && dpkg -s libczmq-dev libjansson-dev libpq-dev libssl-dev libcurl4-openssl-dev \
                  libmicrohttpd-dev pkg-config >/dev/null 2>&1; then need=0; fi; \
    if [ "$APT" = 0 ]; then need=0; fi; \
    if [ "$need" = 1 ]; then \
        apt-get update; \
        apt-get install -y --no-install-recommends build-essential cmake pkg-config \
            libzmq3-dev libczmq-dev libjansson-dev libpq-dev libssl-dev \
            libcurl4-openssl-dev libmicrohttpd-dev ca-certificates; \
        rm -rf /var/lib/apt/lists/*; \
    else echo "build base already has the toolchain: no apt-get"; fi

WORKDIR /src
COPY . /src
# The stage targets are whatever `sb-*` executables CMake defines, so a new stage
# (sb-enricher, sb-renewer, ...) is built and shipped without touching this file. Tests are
# not built (CI builds them natively); Check may be missing from the base. SB_WERROR=OFF:
# a warning from another compiler must not stop an operator's build (CI keeps -Werror).
RUN set -eu; \
    cmake -S /src -B /build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSB_WERROR=OFF >/dev/null; \
    targets=$(cmake --build /build --target help | sed -n 's/^\.\.\. \(sb-[A-Za-z0-9_-]*\|sbctl\)$/\1/p'); \
    test -n "$targets" || { echo "no sb-* targets found" >&2; exit 1; }; \
    echo "building:" $targets; \
    cmake --build /build -j"$JOBS" --target $targets; \
    mkdir -p /out/bin; \
    for t in $targets; do install -m 0755 "$(find /build -type f -name "$t" -perm -u+x | head -n1)" /out/bin/; done; \
    ls -l /out/bin

# ---- runtime: only the shared libraries, curl for HEALTHCHECK, a non-root user ----------
FROM ${RUNTIME_BASE} AS runtime
ARG APT=auto
ENV DEBIAN_FRONTEND=noninteractive
RUN set -eu; \
    need=1; \
    if [ "$APT" = auto ] && command -v curl >/dev/null \
       && dpkg -s libzmq5 libczmq4 libjansson4 libpq5 libssl3 libcurl4 libmicrohttpd12 \
                  ca-certificates >/dev/null 2>&1; then need=0; fi; \
    if [ "$APT" = 0 ]; then need=0; fi; \
    if [ "$need" = 1 ]; then \
        apt-get update; \
        apt-get install -y --no-install-recommends libzmq5 libczmq4 libjansson4 libpq5 \
            libssl3 libcurl4 libmicrohttpd12 ca-certificates curl; \
        rm -rf /var/lib/apt/lists/*; \
    else echo "runtime base already has the libraries: no apt-get"; fi; \
    groupadd --system --gid 10001 switchboard; \
    useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/switchboard \
            --shell /usr/sbin/nologin switchboard; \
    mkdir -p /var/lib/switchboard/spool; \
    chown -R switchboard:switchboard /var/lib/switchboard; \
    chmod 0750 /var/lib/switchboard/spool

COPY --from=build /out/bin/ /usr/local/bin/
# Fail the build, not the first start, when a runtime library is missing.
RUN set -eu; for b in /usr/local/bin/sb-* /usr/local/bin/sbctl; do \
        if ldd "$b" | grep 'not found'; then echo "$b: missing library" >&2; exit 1; fi; \
    done

# The ingress's spool; compose mounts a named volume here (the image's copy is owned by
# switchboard, so a fresh named volume is too).
ENV SPOOL_DIR=/var/lib/switchboard/spool \
    SB_HEALTH_URL=http://127.0.0.1:8001/api/webhooks/health
WORKDIR /var/lib/switchboard
USER switchboard
EXPOSE 8001 9102 9104 5557 5558 5559

# Liveness only: "does the process answer HTTP". Without -f curl succeeds on any status, so
# the ingress's 503 "degraded" (a downstream stage or the database is away, which is not
# this container's fault) does not get it restarted. compose.yaml sets SB_HEALTH_URL to
# each stage's own health endpoint: the ingress's /api/webhooks/health on 8001, the
# metrics server's /health (METRICS_LISTEN) on the other stages.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD curl -s -o /dev/null --max-time 4 "$SB_HEALTH_URL" || exit 1

CMD ["sb-ingress"]
