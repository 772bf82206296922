#!/usr/bin/env python3
"""Removes the proxy-wasm callbacks this filter never needs from a module's exports.

proxy-wasm-rust-sdk exports every callback of the ABI. Envoy calls each exported one
for every request (response headers, response body, log, ...), and each call is a
crossing into the wasm VM that costs CPU even when the SDK does nothing with it. A
callback that is not exported is skipped by the host. The functions themselves stay
in the module (wasm-opt removes them afterwards as dead code).

Every name in DROP must be exported by the input: a missing one fails (exit 1) and
writes nothing, so an SDK change cannot go unnoticed.

Usage: strip_exports.py IN.wasm OUT.wasm
"""
import sys

# Callbacks the filter does not implement: the request/response body and trailer
# phases, the response headers, the access-log phase, network-filter and gRPC
# callbacks, shared queues, and done (the filter cleans up when the context is
# deleted). Everything else (configure, context create/delete,
# request headers, tick, http call response, foreign function, memory) is kept.
DROP = {
    "proxy_on_request_body", "proxy_on_request_trailers",
    "proxy_on_response_headers", "proxy_on_response_body", "proxy_on_response_trailers",
    "proxy_on_log", "proxy_on_done",
    "proxy_on_new_connection", "proxy_on_downstream_data", "proxy_on_upstream_data",
    "proxy_on_downstream_connection_close", "proxy_on_upstream_connection_close",
    "proxy_on_grpc_close", "proxy_on_grpc_receive", "proxy_on_grpc_receive_initial_metadata",
    "proxy_on_grpc_receive_trailing_metadata",
    "proxy_on_queue_ready",
}


def read_leb(b: bytes, i: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        x = b[i]
        i += 1
        result |= (x & 0x7F) << shift
        shift += 7
        if x < 0x80:
            return result, i


def write_leb(n: int) -> bytes:
    out = bytearray()
    while True:
        x = n & 0x7F
        n >>= 7
        if n:
            out.append(x | 0x80)
        else:
            out.append(x)
            return bytes(out)


def strip(data: bytes) -> tuple[bytes, list[str]]:
    if data[:4] != b"\0asm":
        raise SystemExit("not a wasm module")
    out = bytearray(data[:8])
    removed: list[str] = []
    i = 8
    while i < len(data):
        sid = data[i]
        size, j = read_leb(data, i + 1)
        body = data[j:j + size]
        if sid == 7:  # export section
            count, k = read_leb(body, 0)
            kept = []
            for _ in range(count):
                start = k
                n, k = read_leb(body, k)
                name = body[k:k + n].decode()
                k += n + 1  # name, kind
                _, k = read_leb(body, k)  # index
                if name in DROP:
                    removed.append(name)
                else:
                    kept.append(body[start:k])
            body = write_leb(len(kept)) + b"".join(kept)
        out += bytes([sid]) + write_leb(len(body)) + body
        i = j + size
    return bytes(out), removed


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    src, dst = argv[1], argv[2]
    stripped, removed = strip(open(src, "rb").read())
    missing = sorted(DROP - set(removed))
    if missing:
        # The SDK changed what it exports: fail rather than ship a module whose
        # exports nobody checked.
        print(f"strip_exports.py: {src} does not export {', '.join(missing)}; "
              "update DROP to what the proxy-wasm SDK exports", file=sys.stderr)
        return 1
    open(dst, "wb").write(stripped)
    print(f"removed {len(removed)} unused proxy-wasm exports", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
