# syntax=docker/dockerfile:1
# workload-generator: CLI + HTTP service that generates benchmark workloads for LLM serving systems.
#
#   docker build -t workload-generator:0.1.0 .
#   docker run --rm -p 8080:8080 -v wg-data:/data workload-generator:0.1.0
#
# Three stages (cargo-chef): the dependency layer is rebuilt only when Cargo.toml/Cargo.lock change.
# The runtime image needs no network: the default tokenizer is embedded in the binary.

ARG RUST_VERSION=1.95

# --- chef: toolchain + cargo-chef (Debian 12 "bookworm", the same glibc as the runtime image) ---
FROM rust:${RUST_VERSION}-slim-bookworm AS chef
RUN cargo install cargo-chef --locked --version 0.1.78
WORKDIR /src

# --- planner: a recipe of the dependency graph only ---
FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

# --- builder: build dependencies (cached layer), then the binary ---
FROM chef AS builder
COPY --from=planner /src/recipe.json recipe.json
RUN cargo chef cook --release --locked --recipe-path recipe.json --bin workload-generator
COPY . .
RUN cargo build --release --locked --bin workload-generator \
    && install -D -m 0755 target/release/workload-generator /out/workload-generator \
    && install -d -m 0750 /out/data
# Smoke test: the binary starts in the build image.
RUN ["/out/workload-generator", "--version"]

# --- runtime: glibc + libgcc only, no shell, non-root (uid/gid 65532) ---
FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="workload-generator" \
      org.opencontainers.image.description="Generates timed benchmark workloads (JSONL) for LLM serving systems, as a CLI and an HTTP service" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="gcr.io/distroless/cc-debian12:nonroot"
COPY --from=builder /out/workload-generator /usr/local/bin/workload-generator
COPY --from=builder --chown=65532:65532 /out/data /data
ENV WG_BIND=0.0.0.0:8080 \
    WG_DATA_DIR=/data \
    WG_LOG_FORMAT=json
USER 65532:65532
WORKDIR /data
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/workload-generator", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/workload-generator"]
CMD ["serve"]
