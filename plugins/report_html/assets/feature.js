// saelab report: one latent, feature.html#<id>.
'use strict';
(function () {
  const { el, clear, group, fmt, pct, tokSpan, actClass, loadChunk, chunkFile, summary, ready, errorBox } = window.saelab;
  const S = summary();
  const main = document.getElementById('main');
  const SVG = 'http://www.w3.org/2000/svg';
  const dSae = Number.isInteger(S.d_sae) ? S.d_sae : null;
  const chunkSize = Number.isInteger(S.chunk_size) && S.chunk_size > 0 ? S.chunk_size : 64;
  let generation = 0;

  function svg(tag, attrs, text) {
    const e = document.createElementNS(SVG, tag);
    for (const k in attrs) e.setAttribute(k, String(attrs[k]));
    if (text !== undefined) e.textContent = String(text);
    return e;
  }

  function section(title, extra) {
    const s = el('section', 'card wide');
    const h = el('h2', '', title);
    if (extra) h.appendChild(el('span', 'count', extra));
    s.appendChild(h);
    main.appendChild(s);
    return s;
  }

  function parseId() {
    let h = location.hash.replace(/^#/, '');
    try { h = decodeURIComponent(h).trim(); } catch (e) { /* keep it undecoded */ }
    if (!/^\d+$/.test(h)) return { error: h === '' ? 'No latent id: open feature.html#<id>, e.g. feature.html#0.' : 'Not a latent id: "' + h + '".' };
    const id = Number(h);
    if (!Number.isSafeInteger(id) || (dSae !== null && id >= dSae))
      return { error: 'Latent ' + h + ' is out of range: this SAE has ' + (dSae ?? '?') + ' latents (0 to ' + (dSae !== null ? dSae - 1 : '?') + ').' };
    return { id };
  }

  function setPager(id) {
    const prev = document.getElementById('prev'), next = document.getElementById('next');
    const on = (a, ok, target) => {
      a.classList.toggle('disabled', !ok);
      if (ok) { a.href = 'feature.html#' + target; a.removeAttribute('aria-disabled'); }
      else { a.removeAttribute('href'); a.setAttribute('aria-disabled', 'true'); }
    };
    on(prev, id !== null && id > 0, id - 1);
    on(next, id !== null && (dSae === null || id + 1 < dSae), id + 1);
  }

  // ---- parts of the page ----------------------------------------------------------------------

  function stats(f) {
    const s = el('section', 'card wide stats');
    const dl = el('dl', 'statgrid');
    const add = (k, v, hint) => {
      const d = el('div', 'stat');
      d.appendChild(el('dt', '', k));
      const dd = el('dd', '', v);
      if (hint) dd.title = hint;
      d.appendChild(dd);
      dl.appendChild(d);
    };
    add('density', pct(f.density), String(f.density));
    add('count', fmt(f.count), 'tokens with activation > 0 of ' + fmt(S.tokens));
    add('max', fmt(f.max), String(f.max));
    add('mean', fmt(f.mean), 'mean over all scanned tokens: ' + String(f.mean));
    add('mean firing', fmt(f.mean_firing), 'mean over the tokens it fired on: ' + String(f.mean_firing));
    s.appendChild(dl);
    return s;
  }

  // Histogram of activations > 0: bin i holds (i*w, (i+1)*w].
  function histogram(f) {
    const s = el('section', 'card hist');
    s.appendChild(el('h2', '', 'Activation histogram'));
    const h = f.histogram || {};
    const counts = Array.isArray(h.counts) ? h.counts : [];
    const w = typeof h.bin_width === 'number' ? h.bin_width : 0;
    if (!counts.length || !counts.some((c) => c > 0)) {
      s.appendChild(el('p', 'muted', 'No activations above 0.'));
      return s;
    }
    const W = 560, H = 170, L = 48, R = 12, T = 10, B = 34;
    const pw = W - L - R, ph = H - T - B;
    const peak = Math.max(...counts);
    const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'histogram', role: 'img', 'aria-label': 'activation histogram' });
    const bw = pw / counts.length;
    counts.forEach((c, i) => {
      if (!(c > 0)) return;
      const bh = Math.max(1, (c / peak) * ph);
      const r = svg('rect', { x: (L + i * bw).toFixed(2), y: (T + ph - bh).toFixed(2), width: Math.max(0.5, bw - 0.6).toFixed(2), height: bh.toFixed(2), class: 'bar' });
      r.appendChild(svg('title', {}, `(${fmt(i * w)}, ${fmt((i + 1) * w)}]: ${group(c)}`));
      root.appendChild(r);
    });
    root.appendChild(svg('line', { x1: L, y1: T + ph, x2: L + pw, y2: T + ph, class: 'axis' }));
    root.appendChild(svg('line', { x1: L, y1: T, x2: L, y2: T + ph, class: 'axis' }));
    const ticks = 5, top = w * counts.length;
    for (let k = 0; k <= ticks; k++) {
      const x = L + (k / ticks) * pw;
      root.appendChild(svg('line', { x1: x, y1: T + ph, x2: x, y2: T + ph + 4, class: 'axis' }));
      root.appendChild(svg('text', { x, y: T + ph + 15, class: 'tick', 'text-anchor': 'middle' }, fmt((k / ticks) * top, 3)));
    }
    root.appendChild(svg('text', { x: L - 5, y: T + 8, class: 'tick', 'text-anchor': 'end' }, fmt(peak)));
    root.appendChild(svg('text', { x: L - 5, y: T + ph, class: 'tick', 'text-anchor': 'end' }, '0'));
    root.appendChild(svg('text', { x: L + pw / 2, y: H - 3, class: 'label', 'text-anchor': 'middle' }, 'activation'));
    root.appendChild(svg('text', { x: 12, y: T + ph / 2, class: 'label', 'text-anchor': 'middle', transform: `rotate(-90 12 ${T + ph / 2})` }, 'tokens'));
    s.appendChild(root);
    return s;
  }

  // One example: its activation, then its tokens coloured by activation relative to the max.
  function exampleLine(e, max) {
    const row = el('div', 'ex');
    row.appendChild(el('span', 'act', fmt(e.act)));
    const ctx = el('div', 'ctx');
    const toks = Array.isArray(e.tokens) ? e.tokens : [];
    const acts = Array.isArray(e.acts) ? e.acts : [];
    const own = e.pos - e.start;
    for (let i = 0; i < toks.length; i++) {
      const a = acts[i] === undefined ? null : acts[i];
      const t = tokSpan(toks[i], false);
      t.classList.add(actClass(a, max));
      if (i === own) t.classList.add('cur');
      t.title = a === null ? 'not evaluated' : String(a);
      ctx.appendChild(t);
    }
    row.appendChild(ctx);
    row.title = 'sequence ' + e.seq + ', position ' + e.pos;
    return row;
  }

  function examples(parent, list, max) {
    const box = el('div', 'examples');
    for (const e of list) box.appendChild(exampleLine(e, max));
    parent.appendChild(box);
  }

  function logitTable(title, rows) {
    const t = el('table', 'logits');
    const th = el('thead');
    const hr = el('tr');
    hr.appendChild(el('th', '', title));
    hr.appendChild(el('th', 'num', 'logit'));
    th.appendChild(hr);
    t.appendChild(th);
    const tb = el('tbody');
    for (const [tok, v] of rows || []) {
      const tr = el('tr');
      const td = el('td');
      td.appendChild(tokSpan(tok, true));
      tr.appendChild(td);
      const tv = el('td', 'num ' + (v >= 0 ? 'pos' : 'neg'), (v > 0 ? '+' : '') + fmt(v));
      tv.title = String(v);
      tr.appendChild(tv);
      tb.appendChild(tr);
    }
    t.appendChild(tb);
    return t;
  }

  function logits(f) {
    const sl = el('section', 'card');
    sl.id = 'logits';
    sl.appendChild(el('h2', '', 'Logit effects'));
    const lg = f.logits || {};
    if (lg.unavailable !== undefined) {
      sl.appendChild(el('p', 'muted', 'Unavailable: ' + String(lg.unavailable)));
    } else {
      const two = el('div', 'two');
      two.appendChild(logitTable('promoted', lg.top));
      two.appendChild(logitTable('suppressed', lg.bottom));
      sl.appendChild(two);
    }
    return sl;
  }

  function render(id, f) {
    clear(main);
    document.getElementById('title').textContent = 'Latent ' + id;
    document.title = 'saelab · latent ' + id;
    document.getElementById('subtitle').textContent = [S.model_id, S.hook].filter(Boolean).join(' · ');
    const max = typeof f.max === 'number' ? f.max : 0;
    main.appendChild(stats(f));
    const head = el('div', 'row2');
    head.appendChild(histogram(f));
    head.appendChild(logits(f));
    main.appendChild(head);

    const top = Array.isArray(f.top) ? f.top : [];
    const st = section('Top activations', top.length ? top.length + ' examples, highest first' : '');
    st.id = 'top';
    if (top.length) examples(st, top, max); else st.appendChild(el('p', 'muted', 'This latent never fired in the scan.'));

    const bands = Array.isArray(f.bands) ? f.bands.slice().reverse() : [];
    if (bands.length) {
      const sb = section('Activation bands', 'samples from each activation interval, highest first');
      sb.id = 'bands';
      for (const b of bands) {
        const bd = el('div', 'band');
        const bh = el('div', 'band-head');
        bh.appendChild(el('span', 'range', fmt(b.lo) + '–' + fmt(b.hi)));
        bh.appendChild(el('span', 'muted', fmt(b.count) + ' tokens'));
        bd.appendChild(bh);
        const samples = Array.isArray(b.samples) ? b.samples : [];
        if (samples.length) examples(bd, samples, max); else bd.appendChild(el('p', 'muted', 'no samples'));
        sb.appendChild(bd);
      }
    }

    const sn = el('section', 'card wide');
    sn.id = 'neighbours';
    sn.appendChild(el('h2', '', 'Nearest decoder directions'));
    const nb = Array.isArray(f.neighbours) ? f.neighbours : [];
    if (nb.length) {
      const ul = el('ul', 'neighbours');
      for (const n of nb) {
        const li = el('li');
        const a = el('a', '', '#' + n.id);
        a.href = 'feature.html#' + Number(n.id);
        li.appendChild(a);
        li.appendChild(el('span', 'cos', 'cos ' + fmt(n.cos, 3)));
        ul.appendChild(li);
      }
      sn.appendChild(ul);
    } else {
      sn.appendChild(el('p', 'muted', 'none'));
    }
    main.appendChild(sn);
  }

  function show() {
    const gen = ++generation;
    const t0 = performance.now();
    const p = parseId();
    setPager(p.id ?? null);
    if (p.error) {
      clear(main);
      document.getElementById('title').textContent = 'Latent ?';
      errorBox(main, p.error);
      ready(performance.now() - t0);
      return;
    }
    const id = p.id;
    document.getElementById('goto-id').value = String(id);
    const n = Math.floor(id / chunkSize);
    loadChunk(n).then((chunk) => {
      if (gen !== generation) return;
      const f = chunk && Object.prototype.hasOwnProperty.call(chunk, String(id)) ? chunk[String(id)] : null;
      if (!f) {
        clear(main);
        errorBox(main, 'Latent ' + id + ' is not in ' + chunkFile(n) + '.');
      } else {
        render(id, f);
      }
      window.scrollTo(0, 0);
      ready(performance.now() - t0);
    }, (err) => {
      if (gen !== generation) return;
      clear(main);
      errorBox(main, String(err && err.message || err) + ' (is the report directory complete?)');
      ready(performance.now() - t0);
    });
  }

  const go = document.getElementById('goto-id');
  if (dSae !== null) go.max = String(dSae - 1);
  go.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && /^\d+$/.test(go.value)) location.hash = '#' + go.value;
  });
  window.addEventListener('hashchange', () => { document.body.dataset.ready = '0'; show(); });
  window.saelab.tokenInspector((t) => {
    const out = [['activation', t.title || '–']];
    return out;
  });
  show();
})();
