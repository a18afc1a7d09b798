// Node grpc-js against wick's gRPC server (wick-testsvc), over a Unix
// socket and over TCP with mutual TLS 1.3: a second, independent HTTP/2
// and gRPC stack beside Python's C-core.
//
// Run: WICK_TESTSVC=... WICK_TESTCERTS=... node --test test_echo_grpcjs.js
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert');
const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { createRequire } = require('node:module');

const peers = createRequire(path.join(__dirname, '..', 'node', 'package.json'));
const grpc = peers('@grpc/grpc-js');
const protoLoader = peers('@grpc/proto-loader');

const SVC = process.env.WICK_TESTSVC;
const CERTS = process.env.WICK_TESTCERTS;
assert.ok(SVC && CERTS, 'set WICK_TESTSVC and WICK_TESTCERTS');

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'wick-grpcjs-'));
const pki = path.join(tmp, 'pki');
fs.mkdirSync(pki);
execFileSync(CERTS, [pki], { stdio: 'ignore' });

const def = protoLoader.loadSync(path.join(__dirname, 'echo.proto'),
  { keepCase: true, longs: Number, enums: String, defaults: true });
const Echo = grpc.loadPackageDefinition(def).wick.test.Echo;

let proc;
let sock;
let port;

before(async () => {
  sock = path.join(tmp, 'echo.sock');
  proc = spawn(SVC, ['-u', sock, '-t', '127.0.0.1:0',
    '-c', path.join(pki, 'server.pem'), '-k', path.join(pki, 'server.key'),
    '-a', path.join(pki, 'ca.pem')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  proc.stderr.on('data', (d) => { stderr += d; });
  proc.stderrText = () => stderr;
  const line = await new Promise((resolve, reject) => {
    let buf = '';
    proc.stdout.on('data', (d) => {
      buf += d;
      if (buf.includes('\n')) resolve(buf.split('\n')[0]);
    });
    proc.on('exit', (code) => reject(new Error('wick-testsvc exited ' + code)));
  });
  assert.match(line, /^ready /);
  port = Number(line.match(/tcp=127\.0\.0\.1:(\d+)/)[1]);
});

after(async () => {
  const code = await new Promise((resolve) => {
    proc.on('exit', (c) => resolve(c));
    proc.kill('SIGTERM');
  });
  const err = proc.stderrText();
  fs.rmSync(tmp, { recursive: true, force: true });
  assert.ok(!/AddressSanitizer|runtime error:/.test(err), err);
  assert.strictEqual(code, 0);
});

// Clients are made on first use: the port is known only after before().
const made = {};
function client(name) {
  if (made[name] === undefined) {
    made[name] = name === 'unix'
      ? new Echo('unix://' + sock, grpc.credentials.createInsecure())
      : new Echo('localhost:' + port, grpc.credentials.createSsl(
        fs.readFileSync(path.join(pki, 'ca.pem')),
        fs.readFileSync(path.join(pki, 'client.key')),
        fs.readFileSync(path.join(pki, 'client.pem'))));
  }
  return made[name];
}

function unary(c, req, md, opts) {
  return new Promise((resolve) => {
    const call = c.Unary(req, md || new grpc.Metadata(), opts || {},
      (err, reply) => resolve({ err, reply, call }));
    call.on('metadata', (m) => { call.headers = m; });
    call.on('status', (s) => { call.trailers = s.metadata; });
  });
}

for (const name of ['unix', 'mtls']) {
  const c = new Proxy({}, { get: (_, k) => {
    const real = client(name);
    const v = real[k];
    return typeof v === 'function' ? v.bind(real) : v;
  } });
  const peer = () => (name === 'unix' ? 'uid:' + process.getuid()
    : 'spiffe://example.org/client');

  test(name + ': unary echo, peer identity and metadata', async () => {
    const md = new grpc.Metadata();
    md.set('x-echo-plain', 'v1');
    md.set('x-echo-trailer', 'tail');
    md.set('x-echo-blob-bin', Buffer.from([0, 1, 254, 255]));
    md.set('other', 'seen');
    const { err, reply, call } = await unary(c,
      { message: 'hello', payload: Buffer.from([0, 255]) }, md);
    assert.ifError(err);
    assert.strictEqual(reply.message, 'hello');
    assert.deepStrictEqual([...reply.payload], [0, 255]);
    assert.strictEqual(reply.peer, peer());
    assert.strictEqual(reply.metadata.other, 'seen');
    assert.deepStrictEqual(call.headers.get('x-echo-plain'), ['v1']);
    assert.deepStrictEqual([...call.headers.get('x-echo-blob-bin')[0]],
      [0, 1, 254, 255]);
    assert.deepStrictEqual(call.trailers.get('x-trailer'), ['tail']);
  });

  test(name + ': status codes and percent-encoded messages', async () => {
    for (let code = 1; code <= 16; code++) {
      const msg = `code ${code}: 100% näive\nsecond line`;
      const { err } = await unary(c, { status: code, status_message: msg });
      assert.strictEqual(err.code, code);
      assert.strictEqual(err.details, msg);
    }
  });

  test(name + ': deadline expires', async () => {
    const { err } = await unary(c, { sleep_ms: 3000 }, null,
      { deadline: Date.now() + 300 });
    assert.strictEqual(err.code, grpc.status.DEADLINE_EXCEEDED);
    const ok = await unary(c, { message: 'd' }, null,
      { deadline: Date.now() + 5000 });
    assert.ok(ok.reply.deadline_ms > 3000 && ok.reply.deadline_ms <= 5100,
      String(ok.reply.deadline_ms));
  });

  test(name + ': message limit', async () => {
    const LIMIT = 4 * 1024 * 1024;
    const under = await unary(c, { payload: Buffer.alloc(LIMIT - 7, 0x75),
      reply_size: 16 });
    assert.ifError(under.err);
    assert.strictEqual(under.reply.payload.length, 16);
    const over = await unary(c, { payload: Buffer.alloc(LIMIT - 6, 0x6f),
      reply_size: 16 });
    assert.strictEqual(over.err.code, grpc.status.RESOURCE_EXHAUSTED);
  });

  test(name + ': server stream, cancel, and 100 concurrent streams', async () => {
    const seqs = await new Promise((resolve, reject) => {
      const got = [];
      const s = c.ServerStream({ count: 500, payload_size: 64 });
      s.on('data', (m) => got.push(m.seq));
      s.on('end', () => resolve(got));
      s.on('error', reject);
    });
    assert.deepStrictEqual(seqs, [...Array(500).keys()]);

    const cancelled = await new Promise((resolve) => {
      const s = c.ServerStream({ count: 1000, interval_ms: 20 });
      let n = 0;
      s.on('data', () => { if (++n === 2) s.cancel(); });
      s.on('error', (e) => resolve(e.code));
    });
    assert.strictEqual(cancelled, grpc.status.CANCELLED);

    const counts = await Promise.all([...Array(100).keys()].map(() =>
      new Promise((resolve, reject) => {
        let n = 0;
        const s = c.ServerStream({ count: 5, interval_ms: 100 });
        s.on('data', () => n++);
        s.on('end', () => resolve(n));
        s.on('error', reject);
      })));
    assert.deepStrictEqual(counts, Array(100).fill(5));
  });

  test(name + ': bidi ping-pong', async () => {
    const replies = await new Promise((resolve, reject) => {
      const got = [];
      const s = c.Bidi();
      s.on('data', (m) => {
        got.push(m);
        if (got.length < 100) s.write({ message: 'm' + got.length });
        else s.end();
      });
      s.on('end', () => resolve(got));
      s.on('error', reject);
      s.write({ message: 'm0' });
    });
    assert.deepStrictEqual(replies.map((r) => r.message),
      [...Array(100).keys()].map((i) => 'm' + i));
    assert.deepStrictEqual(replies.map((r) => r.seq), [...Array(100).keys()]);
  });

  test(name + ': unknown method', async () => {
    const code = await new Promise((resolve) => {
      c.makeUnaryRequest('/wick.test.Echo/Nope', (x) => x, (x) => x,
        Buffer.alloc(0), (err) => resolve(err.code));
    });
    assert.strictEqual(code, grpc.status.UNIMPLEMENTED);
  });
}

test('mtls: a client from a foreign CA is refused', async () => {
  const bad = new Echo('localhost:' + port, grpc.credentials.createSsl(
    fs.readFileSync(path.join(pki, 'ca.pem')),
    fs.readFileSync(path.join(pki, 'other-client.key')),
    fs.readFileSync(path.join(pki, 'other-client.pem'))));
  const { err } = await unary(bad, { message: 'x' }, null,
    { deadline: Date.now() + 5000 });
  assert.strictEqual(err.code, grpc.status.UNAVAILABLE);
  bad.close();
});
