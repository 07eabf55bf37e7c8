# plystra_http (the REST front) and plystractl, on debian:bookworm-slim.
# Build:  docker build -t plystra-http .
# The database image is Dockerfile.postgres; docker-compose.yml runs both, with `plystractl migrate up` first.

FROM rust:1.95-bookworm AS build
WORKDIR /src
# The whole workspace manifest is needed to resolve it; only plystra_http and plystractl (and plystra_core) are
# compiled.
COPY Cargo.toml Cargo.lock rustfmt.toml ./
COPY plystra_core plystra_core
COPY plystra_pg plystra_pg
COPY plystra_http plystra_http
COPY plystractl plystractl
# Embedded at build time: the migration ledger and files (readiness, plystractl) and the demo data.
COPY migrations migrations
COPY sql sql
RUN cargo build --release --locked -p plystra_http -p plystractl --bins \
    && install -D -m 0755 target/release/plystra_http /out/plystra_http \
    && install -D -m 0755 target/release/plystractl /out/plystractl

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin plystra
COPY --from=build /out/plystra_http /out/plystractl /usr/local/bin/
USER plystra
ENV SERVER_HOST=0.0.0.0 \
    SERVER_PORT=8080
EXPOSE 8080
CMD ["plystra_http"]
