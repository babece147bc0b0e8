# The `sfu` server as a container image.
#
#   docker build -t sfu .
#   docker run --rm -p 7880:7880 -p 7882-7885:7882-7885/udp \
#     -e SFU_ANNOUNCE=<address clients reach> -e SFU_AUTH__API_KEY=... -e SFU_AUTH__API_SECRET=... sfu
#
# Configuration is by SFU_* environment variables (config/sfu.example.toml lists every key), or a
# file mounted and named with SFU_CONFIG. docker-compose.yml runs a three-node cluster.

# Same toolchain as CI; the image's Debian release must match the runtime's (glibc).
ARG RUST_VERSION=1.95

# ---- builder --------------------------------------------------------------------------------------
FROM rust:${RUST_VERSION}-bookworm AS builder
WORKDIR /src

# Dependencies first, from the manifests alone with stub sources: this slow layer is rebuilt only
# when a manifest or Cargo.lock changes. Every workspace crate is listed (scripts/check-deploy
# compares the list with crates/*).
COPY Cargo.toml Cargo.lock ./
COPY crates/sfu-bwe/Cargo.toml crates/sfu-bwe/
COPY crates/sfu-cluster/Cargo.toml crates/sfu-cluster/
COPY crates/sfu-core/Cargo.toml crates/sfu-core/
COPY crates/sfu-fuzz/Cargo.toml crates/sfu-fuzz/
COPY crates/sfu-loadtest/Cargo.toml crates/sfu-loadtest/
COPY crates/sfu-proto/Cargo.toml crates/sfu-proto/
COPY crates/sfu-signal/Cargo.toml crates/sfu-signal/
COPY crates/sfu-srtp/Cargo.toml crates/sfu-srtp/
COPY crates/sfu-transport/Cargo.toml crates/sfu-transport/
COPY crates/sfu-turn/Cargo.toml crates/sfu-turn/
# A crate with a [[bin]] gets a stub main.rs, the others a stub lib.rs; the root package's
# [[bench]] targets must exist for Cargo to load the manifest.
RUN set -eu; \
    mkdir -p src benches; echo 'fn main() {}' > src/main.rs; \
    for crate in crates/*/; do \
      mkdir -p "${crate}src"; \
      if grep -q '^\[\[bin\]\]' "${crate}Cargo.toml"; then echo 'fn main() {}' > "${crate}src/main.rs"; \
      else : > "${crate}src/lib.rs"; fi; \
    done; \
    for bench in $(awk '/^\[\[bench\]\]/ {b = 1; next} /^\[/ {b = 0} b && /^name *=/ {gsub(/^name *= *"|"$/, ""); print}' Cargo.toml); do \
      echo 'fn main() {}' > "benches/$bench.rs"; \
    done; \
    cargo build --release --locked --bin sfu; \
    rm -rf src benches crates/*/src

# The real sources. web/ is compiled into the binary (include_str!), so the runtime image needs
# no copy of it. COPY keeps the files' old mtimes, which Cargo would take for older than the stub
# build: touch them so every workspace crate is rebuilt.
COPY src src
COPY benches benches
COPY crates crates
COPY web web
RUN find src crates -name '*.rs' -exec touch {} + \
 && cargo build --release --locked --bin sfu \
 && cp target/release/sfu /usr/local/bin/sfu

# ---- runtime --------------------------------------------------------------------------------------
FROM debian:bookworm-slim
# ca-certificates for rediss:// (TLS to Redis); curl only for the HEALTHCHECK below.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin sfu
COPY --from=builder /usr/local/bin/sfu /usr/local/bin/sfu

# In a container, listen on every interface (the default 127.0.0.1 is unreachable from outside).
# Set SFU_ANNOUNCE to the address clients reach: it goes into ICE candidates.
ENV SFU_BIND=0.0.0.0
# One UDP port per shard from rtc.udp_port_start (7882). The default of one shard per CPU would
# open ports that a fixed `-p` range does not publish: pin the count, and raise both together.
ENV SFU_RTC__SHARDS=4

# HTTP and WebSocket (signaling, WHIP/WHEP, /metrics, the web client).
EXPOSE 7880/tcp
# Media, to clients and to the other nodes: udp_port_start .. udp_port_start + shards - 1.
EXPOSE 7882-7885/udp
# Cluster control connection (cluster.relay_addr): only between nodes, never public.
EXPOSE 7882/tcp

USER sfu
# Liveness only (/healthz never depends on Redis). It reads SFU_HTTP_PORT; with the port set in a
# config file instead, override this check.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD curl -fsS --max-time 2 "http://127.0.0.1:${SFU_HTTP_PORT:-7880}/healthz" >/dev/null || exit 1
# SIGTERM (docker stop) drains: allow it cluster.drain_timeout_secs (30) plus a few seconds,
# e.g. `docker stop -t 40` or compose's stop_grace_period.
ENTRYPOINT ["/usr/local/bin/sfu"]
CMD ["serve"]
