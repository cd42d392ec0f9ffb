// An XSS corpus in the report stays text (see docs/report-format.md):
//   node xss_check.mjs REPORT_DIR SHOT_DIR EXPECT_JSON
// EXPECT_JSON: {"tokens": {"<id>": "expected DOM text", ...}, "feature_ids": [id, ...]}
// Opens index.html and feature.html#<id> for each listed id. Fails on any dialog, page error,
// console error, failed request or request outside REPORT_DIR; on a .tok element of a listed
// token whose textContent differs from the expected text; on a listed token shown on no page; on
// a <script> that is not the page's own (assets/ or data/), an element with an on* attribute, or
// an <img> that is not a figure.
import path from 'node:path';
import { args, check, fileUrl, main, noProblems, watch } from './common.mjs';

const { reportDir, shotDir, expect } = args('xss_check.mjs', 'REPORT_DIR SHOT_DIR EXPECT_JSON');
const base = fileUrl(reportDir) + '/';
const tokens = expect.tokens || {};
const seen = new Map(Object.keys(tokens).map((k) => [k, 0]));

async function inspect(page, where) {
  const r = await page.evaluate(({ tokens, base }) => {
    const out = { checked: {}, mismatches: [], scripts: [], handlers: [], imgs: [] };
    for (const t of document.querySelectorAll('.tok')) {
      const id = t.dataset.tok;
      if (!Object.prototype.hasOwnProperty.call(tokens, id)) continue;
      out.checked[id] = (out.checked[id] || 0) + 1;
      if (t.textContent !== tokens[id] && out.mismatches.length < 5)
        out.mismatches.push(`token ${id}: ${JSON.stringify(t.textContent.slice(0, 60))} (${t.textContent.length} chars), ` +
          `expected ${JSON.stringify(tokens[id].slice(0, 60))} (${tokens[id].length} chars)`);
    }
    for (const s of document.querySelectorAll('script')) {
      const src = s.getAttribute('src') || '';
      const ok = /^(assets\/[A-Za-z0-9_.-]+\.js|data\/[A-Za-z0-9_.-]+\.js|data\/features\/\d{4,}\.js)$/.test(src) &&
        s.src.startsWith(base) && s.textContent.trim() === '';
      if (!ok) out.scripts.push(src || '(inline) ' + s.textContent.slice(0, 60));
    }
    for (const e of document.querySelectorAll('*')) {
      for (const a of e.attributes) if (/^on/i.test(a.name)) out.handlers.push(`<${e.localName} ${a.name}>`);
      // (An empty style="" is Playwright's: its screenshots hide the caret through el.style.)
      if (e.getAttribute('style')) out.handlers.push(`<${e.localName} style="${e.getAttribute('style').slice(0, 60)}"> (a style attribute)`);
      if (e.localName === 'iframe' || e.localName === 'object' || e.localName === 'embed') out.handlers.push(`<${e.localName}>`);
    }
    for (const i of document.querySelectorAll('img')) {
      const src = i.getAttribute('src') || '';
      if (!/^figures\/[A-Za-z0-9_.-]+\.(svg|png)$/.test(src) || !i.closest('#figures')) out.imgs.push(src.slice(0, 80));
    }
    for (const a of document.querySelectorAll('a[href]')) {
      const h = a.getAttribute('href');
      if (!/^(index\.html|feature\.html#\d+|#.*)$/.test(h)) out.handlers.push(`<a href=${h.slice(0, 60)}>`);
    }
    return out;
  }, { tokens, base });
  const n = Object.values(r.checked).reduce((a, b) => a + b, 0);
  for (const [k, v] of Object.entries(r.checked)) seen.set(k, seen.get(k) + v);
  check(r.mismatches.length === 0, `${where}: listed tokens keep their text (${n} checked)`, r.mismatches.join('; '));
  check(r.scripts.length === 0, `${where}: only the page's own scripts`, r.scripts.join(', '));
  check(r.handlers.length === 0, `${where}: no on* or style attributes, no foreign links or frames`, r.handlers.slice(0, 5).join(', '));
  check(r.imgs.length === 0, `${where}: no <img> beyond the figures`, r.imgs.join(', '));
}

await main(async (browser) => {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const problems = [];
  watch(page, problems, base);
  const dialog = await page.evaluate(() => 1);  // the page is live
  check(dialog === 1, 'browser: a page evaluates');

  await page.goto(base + 'index.html');
  await page.waitForSelector('body[data-ready="1"]', { timeout: 30000 });
  // Let the visible rows build their token chips.
  await page.waitForTimeout(300);
  await inspect(page, 'index');
  await page.screenshot({ path: path.join(shotDir, 'xss-index.png') });
  noProblems(problems, 'index');

  for (const id of expect.feature_ids || []) {
    // A new hash on the same page is a hashchange, not a load: clear the flag the wait looks for.
    await page.evaluate(() => { if (document.body) document.body.dataset.ready = '0'; });
    await page.goto(base + 'feature.html#' + id);
    await page.waitForSelector('body[data-ready="1"]', { timeout: 30000 });
    await inspect(page, `feature ${id}`);
    await page.screenshot({ path: path.join(shotDir, `xss-feature-${id}.png`), fullPage: false });
    noProblems(problems, 'feature ' + id);
  }
  const never = [...seen].filter(([, v]) => v === 0).map(([k]) => k);
  check(never.length === 0, 'every listed token is shown on some page', 'never shown: ' + never.join(', '));
  check(await page.evaluate(() => typeof window.alert === 'function' && !window.__xss), 'no injected global state');
});
