// saelab report: the loader the data files call (docs/report-format.md). Loaded first, before
// any data/*.js: each data file is one call SAELAB.<kind>(value) that stores its value here.
'use strict';
(function () {
  const store = { summary: null, vocab: null, latents: null, chunks: new Map(), waiting: new Map() };
  const api = {
    store,
    summary(v) { store.summary = v; },
    vocab(v) { store.vocab = v; },
    latents(v) { store.latents = v; },
    // A feature chunk: data/features/NNNN.js calls SAELAB.features(N, {"<id>": feature, ...}).
    features(n, v) {
      n = Number(n);
      store.chunks.set(n, v);
      const w = store.waiting.get(n);
      if (w) {
        store.waiting.delete(n);
        for (const f of w) f(v);
      }
    },
  };
  Object.freeze(api);
  Object.defineProperty(window, 'SAELAB', { value: api, writable: false, configurable: false });
})();
