// Writes a synthetic saelab report directory that follows docs/report-format.md, to test the
// report's pages without the C++ writer:
//   node make_fixture.mjs OUT_DIR [--latents N] [--vocab V] [--xss]
// OUT_DIR/expect.json is the input of report_check.mjs; with --xss, OUT_DIR/xss-expect.json is the
// input of xss_check.mjs (its vocabulary then starts with an XSS corpus).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const assetsDir = path.resolve(here, '..', '..', 'plugins', 'report_html', 'assets');

function usage(msg) {
  if (msg) console.error('make_fixture: ' + msg);
  console.error('usage: node make_fixture.mjs OUT_DIR [--latents N] [--vocab V] [--xss]');
  process.exit(2);
}

const argv = process.argv.slice(2);
let out = null, nLatents = 256, nVocab = 49152, xss = false;
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === '--latents') nLatents = Number(argv[++i]);
  else if (a === '--vocab') nVocab = Number(argv[++i]);
  else if (a === '--xss') xss = true;
  else if (a.startsWith('--')) usage('unknown option ' + a);
  else if (out === null) out = a;
  else usage('more than one OUT_DIR');
}
if (!out) usage();
if (!Number.isInteger(nLatents) || nLatents < 8) usage('--latents must be an integer >= 8');
if (!Number.isInteger(nVocab) || nVocab < 256) usage('--vocab must be an integer >= 256');

// ---- deterministic randomness ----------------------------------------------------------------
let seed = 0x5ae1ab;
function rand() {  // mulberry32
  seed |= 0; seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const randint = (n) => Math.floor(rand() * n);
const pick = (a) => a[randint(a.length)];
// Like the writer's round_sig: %.{sig}g and back.
const roundSig = (v, sig = 6) => (v === 0 || !Number.isFinite(v) ? v : Number(v.toPrecision(sig)));

// ---- the data-script encoding of the format ------------------------------------------------
function jsCall(call, value) {
  const text = JSON.stringify(value)
    .replace(/</g, '\\u003c').replace(/>/g, '\\u003e').replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
  return call + text + ');\n';
}
const write = (rel, text) => {
  const p = path.join(out, rel);
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.writeFileSync(p, text);
};

// ---- vocabulary ------------------------------------------------------------------------------
const HUNDRED_K = 'A'.repeat(100 * 1024);
// [display value, expected DOM text] of the XSS corpus (the token ids are its indices).
const XSS = [
  ['<script>alert(1)</script>', '<script>alert(1)</script>'],
  ['"><img src=x onerror=alert(1)>', '"><img src=x onerror=alert(1)>'],
  ['</script><script>alert(1)</script>', '</script><script>alert(1)</script>'],
  ['<!--<script>', '<!--<script>'],
  ['javascript:alert(1)', 'javascript:alert(1)'],
  ['&lt;', '&lt;'],
  ['\u2028', '\u2028'],
  ['\u2029', '\u2029'],
  [['', '\\x00'], '\\x00'],
  [['', '\\x80'], '\\x80'],
  [['', '[U+202E]'], '[U+202E]'],
  [HUNDRED_K, HUNDRED_K],
];
const syll = ['ca', 'te', 'ro', 'na', 'li', 'st', 'er', 'ing', 'ion', 'ma', 'pe', 'dis', 'con', 'tr', 'ul', 'es',
  'ad', 'ph', 'qu', 'ent', 'ly', 'ous', 'ze', 'vo', 'ki', 'ba', 'go', 'mi', 'su', 'ta', 'dog', 'an', 'or', 'in', 're',
  'de', 'mo', 'par', 'pro', 'ver', 'al', 'ic', 'um', 'ast', 'ell', 'ow', 'ight', 'bl', 'gr', 'sh', 'th', 'wh', 'ck',
  'us', 'is', 'at', 'en', 'ex', 'im', 'un', 'ful', 'ness', 'ment', 'ter', 'ver', 'low', 'fr', 'cl', 'pl', 'sp'];
const special = [
  ['', '↵'], ['', '↵↵'], ['', '⇥'], ' ', '  ', '    ', ['', '\\xC3'], ['', '\\xE2\\x80'], ['', '∅'],
  ' cat', 'cat', ' Cat', ' category', 'Catal', ' scatter', ' the', ' of', ',', '.', ' and', ' to', ' a',
  ['caf', '\\xC3'], ['x', '[U+200B]', 'y'], 'naïve', ' 日本', ' über', '2024', ' (', ')', ' "', "'s",
];
const vocab = [];
if (xss) for (const [d] of XSS) vocab.push(d);
for (const s of special) vocab.push(s);
const seen = new Set(vocab.map((v) => JSON.stringify(v)));
while (vocab.length < nVocab) {
  let w = '';
  for (let tries = 0; w === '' || seen.has(JSON.stringify(w)); tries++) {
    w = '';
    const k = 1 + randint(tries > 20 ? 4 : 3);
    for (let i = 0; i < k; i++) w += pick(syll);
    if (rand() < 0.5) w = ' ' + w;
    else if (rand() < 0.15) w = w[0].toUpperCase() + w.slice(1);
    if (tries > 40) w += String(vocab.length);  // unique, like a real vocabulary
  }
  seen.add(JSON.stringify(w));
  vocab.push(w);
}
const displayText = (d) => {
  const s = Array.isArray(d) ? d.join('') : d;
  return s === '' ? '∅' : s;
};

// ---- latents -----------------------------------------------------------------------------------
const TOKENS = 1000000, CHUNK = 64, CTX = 16, TOPK = 10;
const features = [];
const rows = [];
let dead = 0;
for (let id = 0; id < nLatents; id++) {
  const isDead = rand() < 0.04 && !(xss && id < 16) && id !== 1 && id !== 2;
  // log-uniform density between 1e-6 and 0.2
  const count = isDead ? 0 : Math.max(1, Math.round(TOKENS * Math.pow(10, -6 + rand() * 5.3)));
  if (isDead) dead++;
  const max = isDead ? 0 : Math.fround(0.5 + rand() * 30);
  const meanFiring = isDead ? 0 : Math.fround(max * (0.15 + rand() * 0.4));
  // The tokens this latent likes (a few, so top_tokens has repeats).
  const liked = [];
  const nLiked = 1 + randint(5);
  for (let k = 0; k < nLiked; k++) liked.push(randint(vocab.length));
  if (xss && id < XSS.length) liked[0] = id;                 // each XSS token is a top token
  if (xss && id >= 12 && id < 16) for (let k = 0; k < XSS.length; k++) liked[k % 5] = k;
  const example = (act) => {
    const own = randint(CTX);
    const seq = randint(5000), pos = own + randint(200);
    const start = pos - own;
    const tokens = [], acts = [];
    for (let i = 0; i < CTX; i++) {
      let t = i === own || rand() < 0.15 ? pick(liked) : randint(vocab.length);
      if (rand() < 0.01) t = -1;
      tokens.push(t);
      let a = 0;
      if (i === own) a = act;
      else if (rand() < 0.25) a = roundSig(Math.fround(act * rand()));
      acts.push(start + i === 0 ? null : a);
    }
    return { act, seq, pos, start, tokens, acts };
  };
  const top = [];
  if (!isDead) {
    const n = Math.min(TOPK, count);
    for (let k = 0; k < n; k++) top.push(example(roundSig(Math.fround(max * (1 - k / (TOPK * 1.5)) * (k === 0 ? 1 : 0.98))) ));
  }
  if (xss && id >= 12 && id < 16) {
    // The whole corpus in every window of this latent's examples.
    for (const e of top) for (let k = 0; k < XSS.length && k < e.tokens.length; k++) if (e.pos - e.start !== k) e.tokens[k] = k;
  }
  const bands = [];
  if (!isDead) {
    const nb = 4;
    for (let b = 0; b < nb; b++) {
      const lo = roundSig((b / nb) * max), hi = roundSig(((b + 1) / nb) * max);
      const samples = [];
      for (let k = 0; k < 2; k++) samples.push(example(roundSig(Math.fround(lo + (hi - lo) * (0.1 + 0.8 * rand())))));
      bands.push({ lo, hi, count: Math.max(1, Math.round(count / (b + 1) / 2)), samples });
    }
  }
  const bins = 32, hist = new Array(bins).fill(0);
  if (!isDead) for (let i = 0; i < bins; i++) hist[i] = Math.round(count * Math.exp(-i / 5) / 5);
  const neighbours = [];
  for (let k = 0; k < 5; k++) neighbours.push({ id: randint(nLatents), cos: roundSig(0.9 - k * 0.1 - rand() * 0.05, 4) });
  let logits;
  if (id % 7 === 3) logits = { unavailable: 'no unembedding for this model (the source is a harvest)' };
  else {
    const tl = [], bl = [];
    for (let k = 0; k < 8; k++) tl.push([k < liked.length ? liked[k] : randint(vocab.length), roundSig(2 - k * 0.2 + rand() * 0.1)]);
    for (let k = 0; k < 8; k++) bl.push([randint(vocab.length), roundSig(-2 + k * 0.2 - rand() * 0.1)]);
    logits = { top: tl, bottom: bl };
  }
  if (xss && id < 16) logits = { top: XSS.map((_, k) => [k, roundSig(1 - k * 0.05)]), bottom: [[0, -1]] };
  // top_tokens: up to 5 [token, occurrences] among the top examples' own tokens, most frequent first.
  const occ = new Map();
  top.forEach((e) => { const t = e.tokens[e.pos - e.start]; occ.set(t, (occ.get(t) || 0) + 1); });
  const topTokens = [...occ.entries()].sort((a, b) => b[1] - a[1]).slice(0, 5);
  const density = count / TOKENS;
  rows.push([id, count, roundSig(density, 4), roundSig(max, 4), roundSig(meanFiring, 4), topTokens]);
  features.push({
    id, count, density: roundSig(density), max: roundSig(max), mean: roundSig((meanFiring * count) / TOKENS),
    mean_firing: roundSig(meanFiring), histogram: { bin_width: max / bins, counts: hist }, top, bands, neighbours, logits,
  });
}

// ---- write -------------------------------------------------------------------------------------
fs.rmSync(out, { recursive: true, force: true });
fs.mkdirSync(path.join(out, 'assets'), { recursive: true });
for (const name of fs.readdirSync(assetsDir)) {
  const dst = name.endsWith('.html') ? path.join(out, name) : path.join(out, 'assets', name);
  fs.copyFileSync(path.join(assetsDir, name), dst);
}
const model = xss ? '<script>alert(1)</script>"><img src=x onerror=alert(1)>' : 'HuggingFaceTB/SmolLM2-135M';
const summary = {
  model_id: model, hook: 'blocks.15.hook_resid_pre', architecture: 'relu_l1', d_in: 576, d_sae: nLatents,
  scan: TOKENS.toLocaleString('en-US') + ' tokens of the corpus (fixture)', tokens: TOKENS, chunk_size: CHUNK, dead,
  options: { tokens: TOKENS, chunk_size: CHUNK, top_k: TOPK, bands: 4, band_samples: 2, png: false },
  config: (xss ? '# </script><script>alert(1)</script>\n' : '') +
    'model:\n  id: HuggingFaceTB/SmolLM2-135M\n  hook: blocks.15.hook_resid_pre\nsae:\n  architecture: relu_l1\n  d_sae: ' +
    nLatents + '\n  l1_coefficient: 5.0\ntrainer:\n  lr: 0.0003\n  batch_size: 4096\n  steps: 30000\n',
  eval: {
    tokens: 200000,
    reconstruction: { mse: 0.01234, explained_variance: 0.8123, cosine: 0.9512 },
    sparsity: { l0: 32.41, l1: 118.2, dead_fraction: roundSig(dead / nLatents, 4) },
    downstream: { ce_loss_clean: 3.1021, ce_loss_reconstructed: 3.3302, ce_loss_zero: 9.871, ce_loss_score: 0.9663 },
    ...(xss ? { '<img src=x onerror=alert(1)>': '</script><script>alert(1)</script>' } : {}),
  },
  figures: [{ title: xss ? '<img src=x onerror=alert(1)> latent density' : 'Latent density (log10, live latents)', file: 'figures/density.svg' }],
};
write('data/summary.js', jsCall('SAELAB.summary(', summary));
write('data/vocab.js', jsCall('SAELAB.vocab(', vocab));
write('data/latents.js', jsCall('SAELAB.latents(', { columns: ['id', 'count', 'density', 'max', 'mean_firing', 'top_tokens'], rows }));
for (let c = 0; c * CHUNK < nLatents; c++) {
  const chunk = {};
  for (let id = c * CHUNK; id < Math.min(nLatents, (c + 1) * CHUNK); id++) chunk[String(id)] = features[id];
  write('data/features/' + String(c).padStart(4, '0') + '.js', jsCall('SAELAB.features(' + c + ', ', chunk));
}

// figures/density.svg: a histogram of log10 density of the live latents.
{
  const bins = new Array(30).fill(0);
  for (const r of rows) if (r[1] > 0) bins[Math.min(29, Math.max(0, Math.floor((Math.log10(r[2]) + 7) * 5)))]++;
  const peak = Math.max(...bins, 1), W = 640, H = 220, L = 50, B = 30, T = 12, pw = W - L - 12, ph = H - T - B;
  let s = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" font-family="DejaVu Sans, sans-serif" font-size="11">\n`;
  s += `<rect width="${W}" height="${H}" fill="#fff"/>\n`;
  bins.forEach((c, i) => {
    const h = (c / peak) * ph;
    s += `<rect x="${(L + (i * pw) / 30).toFixed(1)}" y="${(T + ph - h).toFixed(1)}" width="${(pw / 30 - 1).toFixed(1)}" height="${h.toFixed(1)}" fill="#4c78a8"/>\n`;
  });
  s += `<line x1="${L}" y1="${T + ph}" x2="${L + pw}" y2="${T + ph}" stroke="#333"/>\n`;
  for (let e = -7; e <= -1; e++) s += `<text x="${(L + ((e + 7) * 5 * pw) / 30).toFixed(1)}" y="${H - 12}" text-anchor="middle">1e${e}</text>\n`;
  s += `<text x="${L - 6}" y="${T + 10}" text-anchor="end">${peak}</text><text x="${L + pw / 2}" y="${H - 1}" text-anchor="middle">log10 density</text>\n</svg>\n`;
  write('figures/density.svg', s);
}

// ---- expectations ------------------------------------------------------------------------------
// The feature to check: the live latent with the most firings among the first chunks (not the last id).
let best = 1;
for (let id = 0; id < Math.min(nLatents - 1, 4 * CHUNK); id++) if (rows[id][1] > rows[best][1]) best = id;
const top = features[best].top.map((e) => ({ act: e.act, text: displayText(vocabAt(e.tokens[e.pos - e.start])) }));
function vocabAt(t) { return t >= 0 && t < vocab.length ? vocab[t] : ['', t === -1 ? '?' : '#' + t]; }
const query = 'cat';
const searchIds = rows.filter((r) => r[5].some(([t]) => displayText(vocabAt(t)).toLowerCase().includes(query))).map((r) => r[0]);
fs.writeFileSync(path.join(out, 'expect.json'),
  JSON.stringify({ rows: nLatents, feature: best, top, search: query, search_ids: searchIds }, null, 1) + '\n');
if (xss) {
  const tokens = {};
  XSS.forEach(([, text], id) => { tokens[String(id)] = text; });
  fs.writeFileSync(path.join(out, 'xss-expect.json'), JSON.stringify({ tokens, feature_ids: [12, 13, 14, 15, 0] }, null, 1) + '\n');
}
let bytes = 0;
for (const f of ['index.html', 'data/summary.js', 'data/vocab.js', 'data/latents.js', ...fs.readdirSync(path.join(out, 'assets')).map((n) => 'assets/' + n)])
  bytes += fs.statSync(path.join(out, f)).size;
console.log(`make_fixture: ${out}: ${nLatents} latents (${dead} dead), vocab ${vocab.length}, feature ${best}, ` +
  `"${query}" keeps ${searchIds.length}; index.html + assets + summary/vocab/latents = ${bytes} bytes`);
