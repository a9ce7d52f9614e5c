# syntax=docker/dockerfile:1
# cancelgate: the same binary as README's `cargo run` (package `cancelgate`, bin `cancelgate`),
# built in release, run as a non-root user. Build: `docker build -t cancelgate .`;
# run with PostgreSQL and the provider simulators: `docker compose up` (docker-compose.yml).

FROM rust:1.95-slim-bookworm AS builder
# aws-lc (rustls' crypto) builds with cmake; SQLite is compiled in (bundled); jemalloc, the
# binary's allocator, builds with make.
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake perl make \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked --package cancelgate --bin cancelgate \
 && install -Dm755 target/release/cancelgate /out/cancelgate

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /app --shell /usr/sbin/nologin cancelgate \
 && mkdir -p /app/data \
 && chown cancelgate:cancelgate /app/data
COPY --from=builder /out/cancelgate /usr/local/bin/cancelgate
# The shipped configuration; mount your own over /app/config (see docker-compose.yml).
COPY config /app/config
WORKDIR /app
USER cancelgate:cancelgate
ENV CANCELGATE__LISTEN=0.0.0.0:8080 \
    CANCELGATE__LOG__FORMAT=json
EXPOSE 8080
VOLUME ["/app/data"]
# `cancelgate healthcheck` GETs http://127.0.0.1:<listen port>/healthz: no curl in the image.
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 CMD ["cancelgate", "healthcheck"]
# SIGTERM (docker stop) drains requests in flight within limits.shutdown_grace_ms.
STOPSIGNAL SIGTERM
ENTRYPOINT ["cancelgate"]
CMD ["serve"]
