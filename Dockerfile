# serin's controller image. Not built by CI here (no container engine on the build machines);
# CI builds the same binary with `cargo build --release --locked` and tests it.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin serin

# glibc-linked binary: distroless "cc" carries libc and libgcc, nothing else; runs as nonroot.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/serin /usr/local/bin/serin
# Numeric, so a pod with runAsNonRoot and no runAsUser (OpenShift, the chart's default) can be
# verified as non-root by the kubelet; the same user as distroless's "nonroot".
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/serin"]
CMD ["controller"]
