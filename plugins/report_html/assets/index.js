// saelab report: the index page (run summary, figures, table of every latent).
'use strict';
(function () {
  const t0 = performance.now();
  const { el, clear, group, fmt, pct, tokSpan, display, displayText, summary, ready, errorBox } = window.saelab;
  const store = window.saelab.store;
  const S = summary();

  // ---- run summary --------------------------------------------------------------------------

  function kv(rows) {
    const t = el('table', 'kv');
    const tb = el('tbody');
    for (const [k, v] of rows) {
      const tr = el('tr');
      tr.appendChild(el('th', '', k));
      const td = el('td');
      if (v instanceof Node) td.appendChild(v); else td.textContent = v;
      tr.appendChild(td);
      tb.appendChild(tr);
    }
    t.appendChild(tb);
    return t;
  }

  function scalarText(v) {
    if (v === null) return 'null';
    if (typeof v === 'number') return fmt(v, 6);
    return String(v);
  }

  // The scalar leaves of a nested JSON value as [dotted.key, value] pairs.
  function leaves(v, prefix, out) {
    if (v !== null && typeof v === 'object') {
      const entries = Array.isArray(v) ? v.slice(0, 64).map((x, i) => ['[' + i + ']', x]) : Object.entries(v);
      for (const [k, x] of entries) {
        const key = Array.isArray(v) ? prefix + k : (prefix ? prefix + '.' + k : k);
        leaves(x, key, out);
      }
      if (Array.isArray(v) && v.length > 64) out.push([prefix, '… ' + v.length + ' entries']);
    } else {
      out.push([prefix || '(value)', scalarText(v)]);
    }
    return out;
  }

  function renderRun() {
    const title = S.model_id ? String(S.model_id) : 'SAE report';
    document.getElementById('title').textContent = title;
    document.title = 'saelab · ' + title;
    document.getElementById('subtitle').textContent = [S.hook, S.architecture].filter(Boolean).join(' · ');
    const rows = [
      ['model', S.model_id ?? '–'],
      ['hook', S.hook ?? '–'],
      ['architecture', S.architecture ?? '–'],
      ['d_in', fmt(S.d_in)],
      ['d_sae', fmt(S.d_sae)],
      ['tokens', fmt(S.tokens)],
      ['scanned', S.scan ?? '–'],
      ['dead', S.d_sae ? fmt(S.dead) + ' (' + pct(S.dead / S.d_sae) + ')' : fmt(S.dead)],
    ];
    const opts = S.options && typeof S.options === 'object' ? leaves(S.options, '', []) : [];
    if (opts.length) rows.push(['options', opts.map(([k, v]) => k + '=' + v).join('  ')]);
    const body = document.getElementById('run-body');
    body.appendChild(kv(rows));
    if (S.config) {
      const d = el('details', 'config');
      d.appendChild(el('summary', '', 'experiment config'));
      d.appendChild(el('pre', 'config-text', S.config));
      body.appendChild(d);
    }
    const mb = document.getElementById('metrics-body');
    if (S.eval && typeof S.eval === 'object') {
      // The headline metrics (eval.json's summary) first; every value of eval.json folded below.
      const head = S.eval.summary && typeof S.eval.summary === 'object' ? leaves(S.eval.summary, '', []) : [];
      const ls = leaves(S.eval, '', []);
      if (head.length) mb.appendChild(kv(head));
      if (ls.length && head.length) {
        const d = el('details', 'config');
        d.appendChild(el('summary', '', 'all of eval.json (' + ls.length + ' values)'));
        d.appendChild(kv(ls));
        mb.appendChild(d);
      } else if (ls.length) {
        mb.appendChild(kv(ls));
      } else {
        mb.appendChild(el('p', 'muted', 'eval.json is empty.'));
      }
    } else {
      mb.appendChild(el('p', 'muted', 'No evaluation for this run (saelab eval writes eval.json).'));
    }
    const fb = document.getElementById('figures-body');
    const figs = Array.isArray(S.figures) ? S.figures : [];
    for (const f of figs) {
      const file = String(f && f.file || '');
      // Only the report's own figures: a relative path under figures/.
      if (!/^figures\/[A-Za-z0-9._-]+\.(svg|png)$/.test(file)) continue;
      const fig = el('figure', 'fig');
      const img = el('img');
      img.src = file;
      img.alt = String(f.title || file);
      img.loading = 'lazy';
      fig.appendChild(img);
      fig.appendChild(el('figcaption', '', f.title || file));
      fb.appendChild(fig);
    }
    if (!fb.firstChild) document.getElementById('figures').hidden = true;
  }

  // ---- latent table -------------------------------------------------------------------------

  const table = document.getElementById('latent-table');
  const GROUP = 128;   // rows per <tbody>: each group skips rendering while off screen (style.css)
  let groups = [];     // the <tbody> groups, in display order
  let hiddenGroup = null;  // a hidden <tbody> that holds the filtered-out rows
  const countEl = document.getElementById('count');
  let data = [];        // per latent: {id, count, density, max, mean_firing, top, text, tr}
  let order = [];       // indices into data, in display order
  let sortKey = 'id', sortDir = 1;

  // One row's cells, cloned from a template (much faster than createElement per cell).
  const rowTemplate = (() => {
    const tr = document.createElement('tr');
    const td0 = document.createElement('td');
    td0.className = 'num';
    td0.appendChild(document.createElement('a'));
    tr.appendChild(td0);
    for (let k = 0; k < 4; k++) {
      const td = document.createElement('td');
      td.className = 'num';
      td.appendChild(document.createTextNode(''));
      tr.appendChild(td);
    }
    const tdTok = document.createElement('td');
    tdTok.className = 'toks';
    tr.appendChild(tdTok);
    return tr;
  })();

  // The top-token chips of row `d` (built when the row first comes near the screen).
  function fillChips(d) {
    if (d.filled) return;
    d.filled = true;
    const td = d.tr.lastChild;
    for (const pair of d.top) {
      const chip = document.createElement('span');
      chip.className = 'chip';
      chip.appendChild(tokSpan(pair[0], true));
      const c = document.createElement('span');
      c.className = 'n';
      c.textContent = '×' + pair[1];
      chip.appendChild(c);
      td.appendChild(chip);
    }
    if (!d.top.length && !(d.count > 0)) td.appendChild(el('span', 'muted', 'dead'));
  }

  function buildRows() {
    const L = store.latents;
    if (!L || !Array.isArray(L.rows)) {
      errorBox(document.getElementById('latents'), 'data/latents.js is missing or malformed.');
      return;
    }
    const cols = Array.isArray(L.columns) ? L.columns : ['id', 'count', 'density', 'max', 'mean_firing', 'top_tokens'];
    const ci = (name, dflt) => { const i = cols.indexOf(name); return i >= 0 ? i : dflt; };
    const cId = ci('id', 0), cCount = ci('count', 1), cDen = ci('density', 2), cMax = ci('max', 3),
      cMf = ci('mean_firing', 4), cTop = ci('top_tokens', 5);
    const n = L.rows.length;
    data = new Array(n);
    for (let i = 0; i < n; i++) {
      const r = L.rows[i];
      const id = r[cId];
      const top = Array.isArray(r[cTop]) ? r[cTop] : [];
      let text = '';
      for (const pair of top) text += displayText(display(pair[0])).toLowerCase() + '\u0000';
      const tr = rowTemplate.cloneNode(true);
      const d = { id, count: r[cCount], density: r[cDen], max: r[cMax], mean_firing: r[cMf], top, text, tr, shown: true, filled: false };
      if (!(d.count > 0)) tr.className = 'dead';
      const c = tr.cells;
      const a = c[0].firstChild;
      a.href = 'feature.html#' + id;
      a.textContent = String(id);
      c[1].firstChild.nodeValue = pct(d.density);
      c[2].firstChild.nodeValue = fmt(d.count);
      c[3].firstChild.nodeValue = fmt(d.max);
      c[4].firstChild.nodeValue = fmt(d.mean_firing);
      rowIndex.set(tr, i);
      data[i] = d;
    }
    order = data.map((_, i) => i);
    hiddenGroup = document.createElement('tbody');
    hiddenGroup.className = 'filtered';
    hiddenGroup.hidden = true;
    layout();
    table.appendChild(hiddenGroup);
    if ('oncontentvisibilityautostatechange' in window) {
      // A group's chips are built when it first comes near the screen.
      table.addEventListener('contentvisibilityautostatechange', (e) => {
        const g = e.target;
        if (!(g instanceof HTMLTableSectionElement) || g === hiddenGroup) return;
        g.live = !e.skipped;
        if (g.live) fillGroup(g);
      }, true);
    } else {
      // No such event: build every row's chips in the background, in slices.
      let next = 0;
      const slice = () => {
        const stop = Math.min(n, next + 500);
        for (; next < stop; next++) fillChips(data[next]);
        if (next < n) setTimeout(slice, 0);
      };
      slice();
    }
  }

  function fillGroup(g) {
    for (const tr of g.rows) {
      const i = rowIndex.get(tr);
      if (i !== undefined) fillChips(data[i]);
    }
  }

  // Puts the shown rows, in `order`, into groups of GROUP rows; the others into the hidden group.
  function layout() {
    const shown = [], gone = document.createDocumentFragment();
    for (const i of order) {
      if (data[i].shown) shown.push(data[i].tr); else gone.appendChild(data[i].tr);
    }
    const need = Math.ceil(shown.length / GROUP);
    while (groups.length < need) {
      const g = document.createElement('tbody');
      g.className = 'grp';
      g.live = false;
      groups.push(g);
    }
    while (groups.length > need) groups.pop().remove();
    for (let k = 0; k < need; k++) {
      const g = groups[k];
      const frag = document.createDocumentFragment();
      for (let j = k * GROUP; j < Math.min(shown.length, (k + 1) * GROUP); j++) frag.appendChild(shown[j]);
      g.appendChild(frag);  // the rows it had moved into other groups already
      if (!g.parentNode) table.insertBefore(g, hiddenGroup && hiddenGroup.parentNode ? hiddenGroup : null);
      if (g.live) fillGroup(g);
    }
    if (hiddenGroup) hiddenGroup.appendChild(gone);
  }
  const rowIndex = new WeakMap();

  const search = document.getElementById('search');
  const dmin = document.getElementById('dmin');
  const dmax = document.getElementById('dmax');
  const hidedead = document.getElementById('hidedead');

  function applyFilter() {
    const q = search.value.trim().toLowerCase();
    const qid = /^#?\d+$/.test(q) ? Number(q.replace('#', '')) : null;
    const idOnly = q.startsWith('#');
    const lo = dmin.value === '' ? null : Number(dmin.value) / 100;
    const hi = dmax.value === '' ? null : Number(dmax.value) / 100;
    const noDead = hidedead.checked;
    let shown = 0, changed = false;
    for (const d of data) {
      let ok = true;
      if (q) ok = (qid !== null && d.id === qid) || (!idOnly && d.text.indexOf(q) >= 0);
      if (ok && lo !== null && !Number.isNaN(lo)) ok = d.density >= lo;
      if (ok && hi !== null && !Number.isNaN(hi)) ok = d.density <= hi;
      if (ok && noDead) ok = d.count > 0;
      if (ok !== d.shown) { d.shown = ok; d.tr.hidden = !ok; changed = true; }
      if (ok) shown++;
    }
    if (changed) layout();
    countEl.textContent = group(shown) + ' of ' + group(data.length) + ' latents';
  }

  function applySort(key, dir) {
    sortKey = key; sortDir = dir;
    const num = (v) => (typeof v === 'number' && !Number.isNaN(v) ? v : -Infinity);
    order.sort((a, b) => {
      const x = num(data[a][key]), y = num(data[b][key]);
      if (x !== y) return x < y ? -dir : dir;
      return data[a].id - data[b].id;
    });
    layout();
    applySort.marks(key, dir);
  }
  applySort.marks = (key, dir) => {
    for (const th of document.querySelectorAll('th.sortable')) {
      th.classList.toggle('asc', th.dataset.key === key && dir > 0);
      th.classList.toggle('desc', th.dataset.key === key && dir < 0);
      th.setAttribute('aria-sort', th.dataset.key === key ? (dir > 0 ? 'ascending' : 'descending') : 'none');
    }
  };

  function wire() {
    for (const th of document.querySelectorAll('th.sortable')) {
      const go = () => {
        const key = th.dataset.key;
        // First click: ids ascending, statistics descending (largest first); then toggle.
        const dir = key === sortKey ? -sortDir : (key === 'id' ? 1 : -1);
        applySort(key, dir);
      };
      th.addEventListener('click', go);
      th.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); go(); } });
    }
    for (const inp of [search, dmin, dmax]) inp.addEventListener('input', applyFilter);
    hidedead.addEventListener('change', applyFilter);
  }

  renderRun();
  buildRows();
  wire();
  applyFilter();
  // The rows are built in the file's order; sort only if that is not already by id.
  if (data.some((d, i) => i > 0 && !(data[i - 1].id < d.id))) applySort('id', 1);
  else applySort.marks('id', 1);
  window.saelab.tokenInspector((t) => {
    const tr = t.closest('tr');
    const chip = t.closest('.chip');
    const n = chip ? chip.querySelector('.n') : null;
    const a = tr ? tr.querySelector('a') : null;
    return [['latent', a ? a.textContent : '–'], ['in top examples', n ? n.textContent : '–']];
  });
  // Ready once the table has been laid out and painted.
  requestAnimationFrame(() => setTimeout(() => ready(performance.now() - t0), 0));
})();
