# destination-mailchimp as the platforms run it: a Rust build stage and a small Debian runtime.
# Both base images are pinned and can be replaced through build arguments (scripts/container-test.sh
# passes local stand-ins on machines that cannot pull images).
ARG BUILDER_IMAGE=docker.io/library/rust:1.95-slim-bookworm
ARG RUNTIME_IMAGE=docker.io/library/debian:bookworm-slim

FROM ${BUILDER_IMAGE} AS builder
WORKDIR /src
COPY Cargo.toml Cargo.lock spec.json ./
COPY src ./src
COPY benches ./benches
# The workspace's other member (the fake Mailchimp API for tests) must be present for cargo to read
# the workspace; only the connector is built.
COPY crates ./crates
# No debug symbols and a stripped binary in the image.
ENV CARGO_PROFILE_RELEASE_DEBUG=0 CARGO_PROFILE_RELEASE_STRIP=true
RUN cargo build --release --locked -p destination-mailchimp --bin destination-mailchimp \
 && install -m 0755 target/release/destination-mailchimp /destination-mailchimp

FROM ${RUNTIME_IMAGE}
# The system's TLS roots (the binary also carries Mozilla's, through rustls), and a user for the
# platform's uid 1000.
RUN (command -v update-ca-certificates >/dev/null \
     || (apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*)) \
 && (getent passwd 1000 >/dev/null || useradd --uid 1000 --user-group --no-create-home --shell /bin/sh airbyte)
COPY --from=builder /destination-mailchimp /usr/local/bin/destination-mailchimp
USER 1000:1000
WORKDIR /tmp
ENV AIRBYTE_ENTRYPOINT="/usr/local/bin/destination-mailchimp"
ENTRYPOINT ["/usr/local/bin/destination-mailchimp"]
LABEL io.airbyte.name="heropixel/destination-mailchimp"
LABEL io.airbyte.version="0.1.0"
