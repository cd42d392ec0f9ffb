// HTTP robustness of saelab serve (tests/steer/test_serve.cpp starts it with a 2 s request
// timeout, 64 KiB bodies, 8 KiB texts and 2 queued model requests): oversized bodies, malformed
// HTTP and JSON, unknown latents, limits, path traversal, 64 concurrent requests, slow-loris and
// idle clients. Each gets an HTTP error or a bounded wait, and the server keeps serving.
//   node serve_robustness.mjs URL
import net from 'node:net';

const base = new URL(process.argv[2]);
const host = base.hostname, port = Number(base.port);
let failed = 0;
function check(cond, name, detail) {
  console.log(`${cond ? 'ok  ' : 'FAIL'} ${name}${detail ? ' (' + detail + ')' : ''}`);
  if (!cond) failed++;
}

// Sends raw bytes, returns {status, body, ms} of the reply (status 0 when the server just closed).
function raw(bytes, { timeoutMs = 30000, drip = 0 } = {}) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const s = net.connect(port, host);
    let data = Buffer.alloc(0), done = false, timer = null;
    const finish = (why) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      const text = data.toString('latin1');
      const m = text.match(/^HTTP\/1\.1 (\d{3})/);
      resolve({ status: m ? Number(m[1]) : 0, body: text.split('\r\n\r\n').slice(1).join('\r\n\r\n'), ms: Date.now() - t0, why });
    };
    timer = setTimeout(() => finish('client timeout'), timeoutMs);
    s.on('data', (d) => { data = Buffer.concat([data, d]); });
    s.on('end', () => finish('closed'));
    s.on('error', (e) => finish(e.code));
    s.on('connect', () => {
      if (!drip) { s.write(bytes); return; }
      let i = 0;
      const iv = setInterval(() => { if (done || i >= bytes.length) return clearInterval(iv); s.write(bytes.slice(i, ++i)); }, drip);
    });
  });
}

function post(path, body, extra = '') {
  const b = Buffer.from(body);
  return raw(Buffer.concat([Buffer.from(`POST ${path} HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\n` +
    `Content-Length: ${b.length}\r\nConnection: close\r\n${extra}\r\n`), b]));
}
const get = (path) => raw(Buffer.from(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`));
const errorOf = (r) => { try { return JSON.parse(r.body).error; } catch (e) { return r.body.slice(0, 80); } };

let r = await post('/api/activations', JSON.stringify({ text: 'x'.repeat(300000) }));
check(r.status === 413, 'a 300 KB body gets 413', `${r.status}: ${errorOf(r)}`);
r = await post('/api/activations', '{"text": "unterminated');
check(r.status === 400, 'malformed JSON gets 400', `${r.status}: ${errorOf(r)}`);
r = await post('/api/activations', '[1, 2, 3]');
check(r.status === 400, 'a JSON array gets 400', `${r.status}: ${errorOf(r)}`);
r = await post('/api/activations', JSON.stringify({ text: 7 }));
check(r.status === 400 && errorOf(r).includes("'text' must be a string"), 'a text of the wrong type gets 400', errorOf(r));
r = await post('/api/activations', JSON.stringify({ text: 'hello', latent: 99999 }));
check(r.status === 422 && errorOf(r).includes('latent 99999 does not exist'), 'an unknown latent gets 422', errorOf(r));
r = await post('/api/steer', JSON.stringify({ prompt: 'Hi', features: [{ latent: 123456, value: 1 }] }));
check(r.status === 422 && errorOf(r).includes('latent 123456 does not exist'), 'steering an unknown latent gets 422', errorOf(r));
r = await post('/api/steer', JSON.stringify({ prompt: 'Hi', features: [], max_new_tokens: 100000 }));
check(r.status === 422 && errorOf(r).includes('max_new_tokens'), 'too many new tokens gets 422', errorOf(r));
r = await post('/api/activations', JSON.stringify({ text: 'word '.repeat(2000) }));
check(r.status === 413 && errorOf(r).includes('limit'), 'a text over the limit gets 413', errorOf(r));
r = await raw(Buffer.from('GARBAGE\r\n\r\n'));
check(r.status === 400, 'a malformed request line gets 400', `${r.status}`);
r = await raw(Buffer.from(`GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20000)}\r\n\r\n`));
check(r.status === 431, 'oversized headers get 431', `${r.status}`);
for (const p of ['/report/../config.yaml', '/report/%2e%2e/config.yaml', '/report//etc/passwd', '/../../etc/passwd']) {
  r = await get(p);
  check(r.status === 404, `${p} gets 404`, `${r.status}`);
}
r = await raw(Buffer.from(`DELETE /api/steer HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`));
check(r.status === 405, 'DELETE gets 405', `${r.status}`);

// A slow-loris client (one byte every 300 ms, never finishing) and idle ones are cut off after
// the request timeout, while others are served meanwhile.
const loris = raw(Buffer.from(`POST /api/activations HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n${'a'.repeat(100)}`), { drip: 300 });
const idle = Array.from({ length: 16 }, () => raw(Buffer.alloc(0), { timeoutMs: 20000 }));
const during = await get('/api/info');
check(during.status === 200, 'the server answers while a slow client drips', `${during.status} in ${during.ms} ms`);
const l = await loris;
check(l.status === 0 && l.ms < 5000 && l.why !== 'client timeout', 'the slow-loris client is disconnected after the timeout', `${l.ms} ms, ${l.why}`);
const idles = await Promise.all(idle);
check(idles.every((x) => x.ms < 5000 && x.why !== 'client timeout'), '16 idle connections are closed after the timeout',
  `slowest ${Math.max(...idles.map((x) => x.ms))} ms`);

// 64 concurrent model requests: each gets 200 or 503 (busy), within a bounded time.
const t0 = Date.now();
const many = await Promise.all(Array.from({ length: 64 }, (_, i) =>
  post('/api/activations', JSON.stringify({ text: `Request number ${i} of the crowd.` }))));
const codes = {};
for (const m of many) codes[m.status] = (codes[m.status] || 0) + 1;
check(many.every((m) => m.status === 200 || m.status === 503), '64 concurrent requests get 200 or 503', JSON.stringify(codes));
check((codes[200] || 0) >= 1 && (codes[503] || 0) >= 1, 'some are served, the rest told to retry', JSON.stringify(codes));
check(Date.now() - t0 < 60000, 'all within a minute', `${Date.now() - t0} ms`);
const busy = many.find((m) => m.status === 503);
check(!busy || errorOf(busy).includes('busy'), 'a 503 says the model is busy', busy ? errorOf(busy) : '');

// Still serving: the page, the info and a real request.
r = await get('/');
check(r.status === 200 && r.body.includes('saelab explorer'), 'the page is still served', `${r.status}`);
r = await post('/api/activations', JSON.stringify({ text: 'Still here after all that.' }));
check(r.status === 200 && JSON.parse(r.body).tokens.length > 0, 'a model request still works', `${r.status}`);
if (failed) { console.error(`FAIL ${failed} checks`); process.exit(1); }
console.log('PASS serve robustness');
