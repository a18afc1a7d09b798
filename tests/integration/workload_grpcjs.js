// A workload on Node grpc-js: fetches everything the SPIFFE Workload API
// serves from the agent at WICK_WL_TARGET ("unix:///path") and checks it
// with node:crypto (X.509) and npm jose (JWT-SVID, WIT-SVID), then prints
// a JSON summary.  Any failed check exits non-zero.  test_agent.py runs it.
'use strict';

const assert = require('node:assert');
const crypto = require('node:crypto');
const path = require('node:path');
const { createRequire } = require('node:module');

const peers = createRequire(path.join(__dirname, '..', 'node', 'package.json'));
const grpc = peers('@grpc/grpc-js');
const protoLoader = peers('@grpc/proto-loader');

const target = process.env.WICK_WL_TARGET;
const audience = process.env.WICK_WL_AUDIENCE || 'grpcjs-aud';
assert.ok(target, 'set WICK_WL_TARGET');

const def = protoLoader.loadSync(
  path.join(__dirname, '..', '..', 'proto', 'workload.proto'),
  { keepCase: true, longs: Number, enums: String, defaults: true,
    includeDirs: ['/usr/include'] });
const API = grpc.loadPackageDefinition(def).SpiffeWorkloadAPI;
const client = new API(target, grpc.credentials.createInsecure());

function md() {
  const m = new grpc.Metadata();
  m.set('workload.spiffe.io', 'true');
  return m;
}

function first(method, req) {
  return new Promise((resolve, reject) => {
    const call = client[method](req, md(), { deadline: Date.now() + 20000 });
    call.on('data', (msg) => { resolve(msg); call.cancel(); });
    call.on('error', (e) => { if (e.code !== grpc.status.CANCELLED) reject(e); });
  });
}

function unary(method, req) {
  return new Promise((resolve, reject) => {
    client[method](req, md(), { deadline: Date.now() + 20000 },
      (e, r) => (e ? reject(e) : resolve(r)));
  });
}

// Concatenated DER certificates to X509Certificate objects.
function certs(buf) {
  const out = [];
  let off = 0;
  while (off < buf.length) {
    assert.strictEqual(buf[off], 0x30);
    let len = buf[off + 1];
    let hdr = 2;
    if (len & 0x80) {
      const n = len & 0x7f;
      len = 0;
      for (let i = 0; i < n; i++) len = len * 256 + buf[off + 2 + i];
      hdr += n;
    }
    out.push(new crypto.X509Certificate(buf.subarray(off, off + hdr + len)));
    off += hdr + len;
  }
  return out;
}

async function main() {
  const jose = await import(peers.resolve('jose'));
  const summary = {};

  // X.509-SVID: one URI SAN, key matches, chains to the bundle.
  const x = await first('FetchX509SVID', {});
  assert.ok(x.svids.length >= 1);
  summary.x509 = [];
  for (const s of x.svids) {
    const chain = certs(s.x509_svid);
    const roots = certs(s.bundle);
    const leaf = chain[0];
    assert.strictEqual(leaf.subjectAltName.split(', ')
      .filter((n) => n.startsWith('URI:')).length, 1);
    assert.ok(leaf.subjectAltName.includes('URI:' + s.spiffe_id));
    assert.strictEqual(leaf.ca, false);
    const key = crypto.createPrivateKey({ key: s.x509_svid_key, format: 'der',
      type: 'pkcs8' });
    assert.ok(leaf.checkPrivateKey(key));
    const issuer = chain.length > 1 ? chain[1] : roots[0];
    assert.ok(leaf.verify(issuer.publicKey));
    summary.x509.push({ spiffe_id: s.spiffe_id, hint: s.hint,
      serial: leaf.serialNumber });
  }
  const xb = await first('FetchX509Bundles', {});
  summary.x509_bundles = Object.keys(xb.bundles);

  // JWT-SVID, verified with jose against FetchJWTBundles.
  const j = await unary('FetchJWTSVID', { audience: [audience] });
  assert.ok(j.svids.length >= 1);
  const jb = await first('FetchJWTBundles', {});
  const td = j.svids[0].spiffe_id.split('/').slice(0, 3).join('/');
  const jwks = JSON.parse(Buffer.from(jb.bundles[td]).toString());
  const { payload } = await jose.jwtVerify(j.svids[0].svid,
    jose.createLocalJWKSet(jwks), { audience, typ: 'JWT' });
  assert.strictEqual(payload.sub, j.svids[0].spiffe_id);
  const v = await unary('ValidateJWTSVID', { audience, svid: j.svids[0].svid });
  assert.strictEqual(v.spiffe_id, j.svids[0].spiffe_id);
  summary.jwt = { sub: payload.sub, aud: payload.aud };

  // WIT-SVID: typ wit+jwt, signature against the WIT bundle, cnf.jwk is
  // the public half of the key delivered with it.
  const w = await first('FetchWITSVID', {});
  assert.ok(w.svids.length >= 1);
  const wb = await first('FetchWITBundles', {});
  const witjwks = JSON.parse(wb.bundles[td]);
  const wit = await jose.jwtVerify(w.svids[0].wit_svid,
    jose.createLocalJWKSet(witjwks), { typ: 'wit+jwt' });
  assert.strictEqual(wit.payload.aud, undefined);
  const priv = JSON.parse(w.svids[0].wit_svid_key);
  const pub = crypto.createPublicKey({ key: crypto.createPrivateKey(
    { key: priv, format: 'jwk' }), format: 'jwk' }).export({ format: 'jwk' });
  assert.strictEqual(wit.payload.cnf.jwk.x, pub.x);
  assert.strictEqual(wit.payload.cnf.jwk.y, pub.y);
  summary.wit = { sub: wit.payload.sub, alg: wit.payload.cnf.jwk.alg };

  console.log(JSON.stringify(summary));
  client.close();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
