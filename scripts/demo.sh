#!/usr/bin/env bash
# The main job, for a fresh Debian 12 machine: install what is needed, build,
# then run a wick-server and a wick-agent on this machine with their
# embedded defaults (SQLite and disk keys in a scratch directory, trust
# domain example.org, server on 127.0.0.1:8081), register an entry for the
# current user's uid, and have a workload fetch its X.509-SVID, a JWT-SVID
# and a WIT-SVID over the SPIFFE Workload API.  No systemd needed.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
build=${WICK_BUILD_DIR:-$here/build}

"$here/scripts/setup.sh"
cmake -S "$here" -B "$build" >/dev/null
cmake --build "$build" -j"$(nproc)"

server="$build/server/wick-server"
agent="$build/agent/wick-agent"
td=example.org
work=$(mktemp -d)
server_pid=""
agent_pid=""
cleanup() {
	for pid in $agent_pid $server_pid; do
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$work"
}
trap cleanup EXIT

wait_for() {	# wait_for DESCRIPTION COMMAND...
	local what=$1
	shift
	for _ in $(seq 1 200); do
		if "$@" >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.05
	done
	echo "demo: $what did not come up; its log:" >&2
	cat "$work"/*.log >&2
	exit 1
}

cd "$work"
echo "== wick-server (data in $work/.data)"
"$server" run -bindAddress 127.0.0.1 >server.log 2>&1 &
server_pid=$!
wait_for wick-server "$server" healthcheck
"$server" bundle show >bundle.pem

token=$("$server" token generate -ttl 600 | awk '/^Token:/ { print $2 }')
agent_id="spiffe://$td/spire/agent/join_token/$token"
echo "== registering spiffe://$td/demo/workload for uid $(id -u)"
"$server" entry create -parentID "$agent_id" \
	-spiffeID "spiffe://$td/demo/workload" -selector "unix:uid:$(id -u)"

echo "== wick-agent (attests with a join token)"
"$agent" run -joinToken "$token" -trustBundle bundle.pem >agent.log 2>&1 &
agent_pid=$!
wait_for wick-agent "$agent" api fetch x509 -silent

echo "== the workload fetches its X.509-SVID"
mkdir -p "$work/svid"
"$agent" api fetch x509 -write "$work/svid"
openssl x509 -in "$work/svid/svid.0.pem" -noout -subject -ext subjectAltName \
	-dates
echo "== a JWT-SVID for audience demo, then validated"
"$agent" api fetch jwt -audience demo | tee jwt.txt
jwt=$(grep -Eo 'ey[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+' jwt.txt | head -1)
"$agent" api validate jwt -audience demo -svid "$jwt"
echo "== a WIT-SVID (proof-of-possession key stays with the workload)"
"$agent" api fetch wit
