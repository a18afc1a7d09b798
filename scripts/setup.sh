#!/usr/bin/env bash
# Install every Debian and npm package that building, testing and the test peers need.
# Idempotent: run it as often as you like. Needs root (or sudo) for apt.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)

debs=(
	build-essential cmake pkg-config clang libclang-rt-14-dev
	libuv1-dev libssl-dev libnghttp2-dev
	libprotobuf-c-dev protobuf-c-compiler protobuf-compiler libprotobuf-dev
	libsqlite3-dev libpq-dev libjansson-dev libcjose-dev libcurl4-openssl-dev
	libtss2-dev libcmocka-dev swtpm swtpm-tools
	openssl python3 python3-grpcio python3-grpc-tools python3-jwt
	python3-cryptography python3-h2
	# docker attestor tests: podman as root with runc (crun refuses hybrid
	# cgroup hosts) and a static busybox for the image; no recommends needed
	podman runc busybox-static
	# promtool checks /metrics (tests/integration/test_health.py); the
	# prometheus server that comes with it is kept from running (below)
	prometheus
	# unit tests: systemd-analyze verify/security, systemd-sysusers and
	# systemd-tmpfiles on an install root, man for Documentation=, setpriv
	systemd man-db util-linux procps
	# the PostgreSQL datastore's tests start their own scratch server
	# (tests/integration/pg.py) from Debian's binaries; the package's own
	# "main" cluster is kept from running (below)
	postgresql
	# bench/run: h2load drives the Workload API, and nginx (the light
	# flavour has HTTP/2) answers h2c on a Unix socket as the transport's
	# ceiling; the package's own nginx service is kept from running (below)
	nghttp2-client nginx-light
	# bench/run counts instructions per call with callgrind
	valgrind
	# the failover test (tests/integration/test_failover.py) puts its own
	# haproxy, in TCP mode on a loopback port, in front of two servers; the
	# package's own haproxy service is kept from running (below)
	haproxy
)

sudo=""
if [ "$(id -u)" -ne 0 ]; then
	sudo="sudo"
fi

missing=()
for p in "${debs[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done
# Node.js and npm: use whatever is on PATH (a nodejs that bundles npm conflicts
# with Debian's npm package); install Debian's only when neither is there.
if ! command -v node >/dev/null 2>&1; then
	missing+=(nodejs)
fi
if ! command -v npm >/dev/null 2>&1; then
	missing+=(npm)
fi
if [ ${#missing[@]} -gt 0 ]; then
	echo "setup: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	$sudo apt-get update -qq
	# No package's service may start while installing (Debian's
	# prometheus would start its server): a policy-rc.d that says no,
	# unless the system already has one.
	policy=""
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
		$sudo chmod 755 /usr/sbin/policy-rc.d
		policy=1
	fi
	$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
	if [ -n "$policy" ]; then
		$sudo rm -f /usr/sbin/policy-rc.d
	fi
fi
# Only the binaries are wanted of these packages: promtool (checks
# /metrics), nginx (bench/run starts its own) and haproxy (the failover
# test starts its own). Their packaged services stay stopped and are not
# started at boot.
for svc in prometheus nginx haproxy; do
	if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
		$sudo systemctl disable --now "$svc.service" >/dev/null 2>&1 || true
	elif [ -x "/etc/init.d/$svc" ]; then
		$sudo "/etc/init.d/$svc" stop >/dev/null 2>&1 || true
		if command -v systemctl >/dev/null 2>&1; then
			$sudo systemctl disable "$svc.service" >/dev/null 2>&1 || true
		fi
	fi
done

# Only the PostgreSQL binaries are wanted: the package's "main" cluster
# stays stopped and is not started at boot (start.conf "manual").
for conf in /etc/postgresql/*/main/start.conf; do
	[ -e "$conf" ] || continue
	if ! grep -qx manual "$conf"; then
		echo manual | $sudo tee "$conf" >/dev/null
	fi
done
if command -v pg_lsclusters >/dev/null 2>&1; then
	pg_lsclusters -h 2>/dev/null | while read -r ver name _ status _; do
		if [ "$status" = online ]; then
			$sudo pg_ctlcluster "$ver" "$name" stop || true
		fi
	done
fi
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
	$sudo systemctl disable --now postgresql.service >/dev/null 2>&1 || true
fi

# Node peers for the interop tests (grpc-js, proto-loader, jose), pinned by the lock file.
if [ -f "$here/tests/node/package-lock.json" ]; then
	if [ ! -d "$here/tests/node/node_modules/@grpc/grpc-js" ]; then
		(cd "$here/tests/node" && npm ci --no-audit --no-fund --loglevel=error)
	fi
fi
echo "setup: done"
