#!/usr/bin/env bash
# The main job, for a fresh Debian 12 machine: install what is needed, build,
# and run it.  Until the daemons exist, the main job is the gRPC foundation:
# our Echo test service on wick's gRPC server, on a Unix socket, called by
# Python grpcio.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
build=${WICK_BUILD_DIR:-$here/build}

"$here/scripts/setup.sh"
cmake -S "$here" -B "$build" >/dev/null
cmake --build "$build" -j"$(nproc)"

tmp=$(mktemp -d)
svc_pid=""
cleanup() {
	if [ -n "$svc_pid" ]; then
		kill "$svc_pid" 2>/dev/null || true
		wait "$svc_pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

sock="$tmp/echo.sock"
"$build/tests/tools/wick-testsvc" -u "$sock" >"$tmp/ready" &
svc_pid=$!
for _ in $(seq 1 100); do
	grep -q '^ready' "$tmp/ready" 2>/dev/null && break
	sleep 0.05
done
echo "== wick-testsvc: $(cat "$tmp/ready")"

echo "== Python grpcio client:"
/usr/bin/python3 "$here/tests/interop/demo_client.py" "$sock"
