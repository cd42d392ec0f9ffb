// saelab explorer (saelab serve): text activations, latent dashboards and steering. The DOM is
// built with createElement/textContent only; server data never reaches an HTML parser.
'use strict';
(function () {
  const $ = (id) => document.getElementById(id);
  let info = null;

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }
  function status(id, text, error) {
    const s = $(id);
    s.textContent = text;
    s.className = 'status' + (error ? ' error' : '');
  }

  async function api(path, body) {
    const r = await fetch(path, body === undefined ? {} : {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
    let j = null;
    try { j = await r.json(); } catch (e) { throw new Error('HTTP ' + r.status); }
    if (!r.ok) throw new Error(j && j.error ? j.error : 'HTTP ' + r.status);
    return j;
  }

  function maxOf(latent) { return info && info.max[latent] > 0 ? info.max[latent] : 1; }

  function dashboardLink(latent) {
    const a = el('a', 'dash', 'dashboard');
    a.href = '/report/feature.html#' + latent;
    if (!info.report) { a.removeAttribute('href'); a.title = 'this run has no report (saelab report FILE)'; }
    return a;
  }

  // One latent as a list item: its id and value, "colour" and "steer" buttons, a dashboard link.
  function latentItem(latent, value, extra) {
    const li = el('li');
    const colour = el('button', 'colour', String(latent));
    colour.title = 'colour the text by latent ' + latent;
    colour.addEventListener('click', () => { $('latent').value = latent; analyse(); });
    const steer = el('button', 'steer', 'steer');
    steer.addEventListener('click', () => addSlider(latent, 1));
    li.append(colour, el('span', null, value.toFixed(2) + (extra || '') + ' '), steer, dashboardLink(latent));
    return li;
  }

  function appendPieces(span, pieces) {
    for (const [marker, text] of pieces) span.append(marker ? el('span', 'marker', text) : document.createTextNode(text));
  }

  function showToken(t, span) {
    for (const s of document.querySelectorAll('.tok.selected')) s.classList.remove('selected');
    span.classList.add('selected');
    $('token-name').textContent = span.textContent;
    const list = $('token-latents');
    clear(list);
    for (const [latent, act] of t.top) list.append(latentItem(latent, act));
    if (!t.top.length) list.append(el('li', 'muted', t.evaluated ? 'no latent fires here' : 'not evaluated'));
  }

  async function analyse() {
    const text = $('text').value;
    if (!text) { status('text-status', 'type some text first', true); return; }
    const body = { text, top: 8 };
    if ($('latent').value !== '') body.latent = Number($('latent').value);
    status('text-status', 'running…');
    try {
      const r = await api('/api/activations', body);
      const box = $('tokens');
      clear(box);
      const scale = r.peak > 0 ? r.peak : 1;
      r.tokens.forEach((t) => {
        const span = el('span', 'tok' + (t.evaluated ? '' : ' skip'));
        appendPieces(span, t.pieces);
        const a = Math.max(0, Math.min(1, t.value / scale));
        span.style.backgroundColor = 'rgba(230, 60, 30, ' + (a * 0.85).toFixed(3) + ')';
        span.dataset.value = String(t.value);
        span.title = 'latent ' + r.latent + ': ' + t.value.toFixed(3);
        span.addEventListener('click', () => showToken(t, span));
        box.append(span);
      });
      const peaks = $('peaks');
      clear(peaks);
      for (const [latent, peak, pos] of r.peaks) peaks.append(latentItem(latent, peak, ' at token ' + pos));
      status('text-status', 'coloured by latent ' + r.latent + ' (peak ' + r.peak.toFixed(2) + ' on this text, max ' +
             r.max.toFixed(2) + ' on the reference)');
      $('latent').placeholder = String(r.latent);
    } catch (e) {
      status('text-status', e.message, true);
    }
  }

  // A steering row: latent id, mode, and a slider in multiples of the latent's max activation.
  function addSlider(latent, value) {
    const row = el('div', 'slider');
    const id = el('input');
    id.type = 'number'; id.min = '0'; id.step = '1'; id.value = String(latent ?? 0); id.className = 'slider-latent';
    const mode = el('select', 'slider-mode');
    for (const m of ['add', 'clamp', 'ablate']) { const o = el('option', null, m); o.value = m; mode.append(o); }
    const range = el('input');
    range.type = 'range'; range.min = '-10'; range.max = '10'; range.step = '0.5'; range.value = String(value ?? 0);
    range.className = 'slider-value';
    const shown = el('span', 'slider-shown');
    const update = () => { shown.textContent = '× max ' + Number(range.value).toFixed(1) + ' (' +
      (Number(range.value) * maxOf(Number(id.value))).toFixed(1) + ')'; };
    range.addEventListener('input', update);
    range.addEventListener('change', () => generate());
    id.addEventListener('change', update);
    const remove = el('button', null, '×');
    remove.addEventListener('click', () => row.remove());
    row.append(el('span', null, 'latent'), id, mode, range, shown, remove);
    $('sliders').append(row);
    update();
    return row;
  }

  let generation = 0;
  async function generate() {
    const features = [];
    for (const row of document.querySelectorAll('#sliders .slider')) {
      features.push({ latent: Number(row.querySelector('.slider-latent').value),
                      mode: row.querySelector('.slider-mode').value,
                      value: Number(row.querySelector('.slider-value').value), unit: 'max' });
    }
    const mine = ++generation;
    status('steer-status', 'generating…');
    try {
      const r = await api('/api/steer', { prompt: $('prompt').value, features,
        max_new_tokens: Number($('new-tokens').value), positions: $('positions').value });
      if (mine !== generation) return;  // a newer request is on its way
      $('default').textContent = r.default;
      $('steered').textContent = r.steered;
      $('steer-desc').textContent = r.features.join(' ');
      status('steer-status', 'done in ' + r.seconds.toFixed(1) + ' s');
    } catch (e) {
      if (mine === generation) status('steer-status', e.message, true);
    }
  }

  async function start() {
    try {
      info = await api('/api/info');
    } catch (e) {
      status('text-status', 'cannot reach the server: ' + e.message, true);
      return;
    }
    $('model').textContent = info.model + ' · ' + info.hook + ' · ' + info.d_sae + ' latents';
    $('report-link').hidden = !info.report;
    $('latent').max = String(info.d_sae - 1);
    $('analyse').addEventListener('click', analyse);
    $('generate').addEventListener('click', generate);
    $('add-slider').addEventListener('click', () => addSlider(0, 0));
    $('new-tokens').max = String(info.limits.max_new_tokens);
    document.body.dataset.ready = '1';
  }
  start();
})();
