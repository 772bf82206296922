# The filter as a Wasm OCI image, "compat" variant (the format Istio's WasmPlugin
# `url: oci://...` and Envoy Gateway fetch): one layer holding only /plugin.wasm.
# Build it with `./build.sh image [TAG] [--lean]` (docker, podman or buildah), which first builds
# dist/jwt_filter.wasm; .dockerignore keeps everything else out of the build context.
FROM scratch
LABEL org.opencontainers.image.title="jwt-filter" \
      org.opencontainers.image.description="JWT-validating proxy-wasm HTTP filter for Envoy" \
      org.opencontainers.image.licenses="Apache-2.0" \
      module.wasm.image/variant="compat"
# MODULE: jwt_filter.wasm (default) or jwt_filter-lean.wasm (`./build.sh image TAG --lean`).
ARG MODULE=jwt_filter.wasm
COPY dist/${MODULE} /plugin.wasm
