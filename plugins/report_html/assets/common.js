// saelab report: shared code of the pages (docs/report-format.md). DOM is built with
// createElement/textContent only; data never reaches an HTML parser.
'use strict';
(function () {
  const S = window.SAELAB;
  const store = S.store;

  // el('td', 'num', '12') -> <td class="num">12</td>
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  // ---- token display strings --------------------------------------------------------------

  const vocab = () => store.vocab || [];

  // The display value of token `id`: a string, or an array whose odd entries are markers.
  function display(id) {
    if (id === -1) return ['', '?'];
    const v = vocab();
    if (Number.isInteger(id) && id >= 0 && id < v.length && v[id] !== null && v[id] !== undefined) return v[id];
    return ['', '#' + id];
  }

  // The display as one plain string (markers inline), as saelab's display_text writes it.
  function displayText(d) {
    if (typeof d === 'string') return d === '' ? '\u2205' : d;
    if (Array.isArray(d)) {
      const s = d.join('');
      return s === '' ? '\u2205' : s;
    }
    return String(d);
  }

  // Appends `text` to `parent`; in a standalone token each space is wrapped in <span class="sp">
  // so the stylesheet can draw it as a faint middle dot (the text itself stays a space).
  function appendText(parent, text, standalone) {
    if (!standalone || text.indexOf(' ') < 0) {
      parent.appendChild(document.createTextNode(text));
      return;
    }
    const parts = text.split(' ');
    for (let i = 0; i < parts.length; i++) {
      if (i > 0) parent.appendChild(el('span', 'sp', ' '));
      if (parts[i]) parent.appendChild(document.createTextNode(parts[i]));
    }
  }

  // Fills `parent` with display `d`: text as itself, markers faintly (class ws).
  function renderDisplay(parent, d, standalone) {
    if (typeof d === 'string' && d !== '') {
      appendText(parent, d, standalone);
      return;
    }
    if (!Array.isArray(d) || d.join('') === '') {
      parent.appendChild(el('span', 'ws', '\u2205'));
      return;
    }
    for (let i = 0; i < d.length; i++) {
      const s = String(d[i]);
      if (s === '') continue;
      if (i % 2 === 1) parent.appendChild(el('span', 'ws', s));
      else appendText(parent, s, standalone);
    }
  }

  // <span class="tok"> for token `id`, data-tok = id.
  function tokSpan(id, standalone) {
    const s = el('span', standalone ? 'tok solo' : 'tok');
    s.dataset.tok = String(id);
    renderDisplay(s, display(id), standalone);
    return s;
  }

  // Activation colour bucket: a0 (zero) .. a9 (the feature's max); `na` where not evaluated.
  function actClass(act, max) {
    if (act === null || act === undefined || Number.isNaN(act)) return 'na';
    if (!(act > 0) || !(max > 0)) return 'a0';
    return 'a' + Math.min(9, Math.max(1, Math.ceil((act / max) * 9)));
  }

  // ---- numbers ------------------------------------------------------------------------------

  // 1234567 -> "1,234,567" (toLocaleString is ~20x slower, which matters for 25k rows).
  function group(n) {
    const s = String(Math.abs(n));
    let out = s.length > 3 ? '' : s;
    if (s.length > 3) {
      const head = s.length % 3 || 3;
      out = s.slice(0, head);
      for (let i = head; i < s.length; i += 3) out += ',' + s.slice(i, i + 3);
    }
    return n < 0 ? '-' + out : out;
  }

  function fmt(v, sig) {
    if (v === null || v === undefined) return '–';
    if (typeof v !== 'number') return String(v);
    if (!Number.isFinite(v)) return String(v);
    if (v === 0) return '0';
    if (Number.isInteger(v) && Math.abs(v) < 1e15) return group(v);
    const a = Math.abs(v);
    if (a >= 1e-4 && a < 1e6) return String(Number(v.toPrecision(sig || 4)));
    return v.toExponential((sig || 4) - 1);
  }

  function pct(density) {
    if (typeof density !== 'number') return '–';
    if (density === 0) return '0%';
    const p = density * 100;
    return (p >= 1e-6 ? String(Number(p.toPrecision(3))) : p.toExponential(2)) + '%';
  }

  // ---- loading ------------------------------------------------------------------------------

  // Loads a data script by <script src> (works from file://, unlike fetch).
  function loadScript(src) {
    return new Promise((resolve, reject) => {
      const s = document.createElement('script');
      s.src = src;
      s.addEventListener('load', () => resolve());
      s.addEventListener('error', () => reject(new Error('could not load ' + src)));
      document.head.appendChild(s);
    });
  }

  function chunkFile(n) {
    return 'data/features/' + String(n).padStart(4, '0') + '.js';
  }

  // The chunk holding latents [n*C, (n+1)*C): resolves to {"<id>": feature, ...}.
  function loadChunk(n) {
    if (store.chunks.has(n)) return Promise.resolve(store.chunks.get(n));
    return new Promise((resolve, reject) => {
      const first = !store.waiting.has(n);
      if (first) store.waiting.set(n, []);
      store.waiting.get(n).push(resolve);
      if (first) {
        loadScript(chunkFile(n)).then(() => {
          if (!store.chunks.has(n)) reject(new Error(chunkFile(n) + ' did not call SAELAB.features(' + n + ', ...)'));
        }, (e) => { store.waiting.delete(n); reject(e); });
      }
    });
  }

  function summary() {
    return store.summary || {};
  }

  function ready(ms) {
    // renderMs: this render's own time; readyAt: ms since navigation start (the checks read both).
    if (ms !== undefined) document.body.dataset.renderMs = String(Math.round(ms));
    document.body.dataset.readyAt = String(Math.round(performance.now()));
    document.body.dataset.ready = '1';
  }

  // A status line at the bottom of the page for the token under the pointer.
  function tokenInspector(describe) {
    const bar = el('div', 'inspector');
    bar.hidden = true;
    document.body.appendChild(bar);
    document.addEventListener('mouseover', (ev) => {
      const t = ev.target instanceof Element ? ev.target.closest('.tok') : null;
      if (!t) { bar.hidden = true; return; }
      clear(bar);
      const id = Number(t.dataset.tok);
      bar.appendChild(el('span', 'k', 'token'));
      bar.appendChild(el('span', 'v', '#' + id));
      const q = el('span', 'tok solo');
      renderDisplay(q, display(id), true);
      bar.appendChild(q);
      const extra = describe ? describe(t) : null;
      if (extra) for (const [k, v] of extra) {
        bar.appendChild(el('span', 'k', k));
        bar.appendChild(el('span', 'v', v));
      }
      bar.hidden = false;
    });
  }

  function errorBox(parent, message) {
    const d = el('div', 'error', message);
    d.setAttribute('role', 'alert');
    parent.appendChild(d);
    return d;
  }

  window.saelab = Object.freeze({
    el, clear, group, display, displayText, renderDisplay, tokSpan, actClass, fmt, pct,
    loadChunk, chunkFile, summary, ready, tokenInspector, errorBox, store,
  });
})();
