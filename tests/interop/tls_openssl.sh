#!/bin/sh
# tls_openssl.sh TESTCERTS TLS_ECHO: openssl s_client (TLS 1.3, ALPN h2,
# client certificate) against our TLS engine.  Checks the handshake, the
# echo, the peer SPIFFE ID the server saw, and that a client certificate
# from a foreign CA is refused.
set -u
testcerts=$1
echo_srv=$2
command -v openssl >/dev/null 2>&1 || { echo "openssl not installed"; exit 1; }

tmp=$(mktemp -d)
pid=
teardown() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null
	rm -rf "$tmp"
}
trap teardown EXIT
fail() { echo "FAIL: $*"; echo "--- server log"; cat "$tmp/server.log"; exit 1; }

"$testcerts" "$tmp/pki" || fail "wick-testcerts failed"
"$echo_srv" "$tmp/pki" 2 >"$tmp/server.log" 2>&1 &
pid=$!
port=
i=0
while [ $i -lt 50 ]; do
	port=$(sed -n 's/^PORT //p' "$tmp/server.log")
	[ -n "$port" ] && break
	sleep 0.1
	i=$((i + 1))
done
[ -n "$port" ] || fail "server did not start"

client() {
	# Keep stdin open a moment so the echo arrives before s_client quits.
	(printf 'hello-wick\n'; sleep 2) | timeout 20 openssl s_client \
	    -connect "127.0.0.1:$port" -tls1_3 -alpn h2 \
	    -cert "$tmp/pki/$1.pem" -key "$tmp/pki/$1.key" \
	    -CAfile "$tmp/pki/ca.pem" -verify_return_error \
	    -servername localhost >"$tmp/$1.out" 2>&1
}

client client
grep -q '^ALPN protocol: h2' "$tmp/client.out" || { cat "$tmp/client.out"; fail "no ALPN h2"; }
grep -q '^New, TLSv1.3' "$tmp/client.out" || { cat "$tmp/client.out"; fail "not TLS 1.3"; }
grep -q 'Verify return code: 0 (ok)' "$tmp/client.out" || { cat "$tmp/client.out"; fail "server certificate not verified"; }
grep -q '^hello-wick$' "$tmp/client.out" || { cat "$tmp/client.out"; fail "no echo"; }
grep -q '^PEER spiffe://example.org/client$' "$tmp/server.log" || fail "server did not see the client ID"

client other-client
if grep -q '^hello-wick$' "$tmp/other-client.out"; then
	cat "$tmp/other-client.out"
	fail "foreign client got an echo"
fi
i=0
while [ $i -lt 50 ] && ! grep -q '^REJECT' "$tmp/server.log"; do
	sleep 0.1
	i=$((i + 1))
done
grep -q '^REJECT' "$tmp/server.log" || fail "server did not reject the foreign client"
[ "$(grep -c '^PEER' "$tmp/server.log")" -eq 1 ] || fail "foreign client was accepted"
echo "--- server log"
cat "$tmp/server.log"
echo PASS
