// The report's index and feature pages in headless Chromium (see docs/report-format.md):
//   node report_check.mjs REPORT_DIR SHOT_DIR EXPECT_JSON
// EXPECT_JSON: {"rows": N, "feature": id, "top": [{"act": number, "text": "..."}, ...],
//               "search": "text", "search_ids": [id, ...]}
// An example's activation matches when the outlined token's title parses to a number within a
// relative 1e-6 of top[i].act. Exits 0 when every check passes, 1 naming the failed check.
import path from 'node:path';
import { args, check, fileUrl, main, noProblems, watch } from './common.mjs';

const { reportDir, shotDir, expect } = args('report_check.mjs', 'REPORT_DIR SHOT_DIR EXPECT_JSON');
const base = fileUrl(reportDir) + '/';

await main(async (browser) => {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const problems = [];
  watch(page, problems, base);

  // ---- index ----
  const t0 = Date.now();
  await page.goto(base + 'index.html');
  await page.waitForSelector('body[data-ready="1"]', { timeout: 30000 });
  const wall = Date.now() - t0;
  const timing = await page.evaluate(() => ({
    render: Number(document.body.dataset.renderMs), readyAt: Number(document.body.dataset.readyAt),
  }));
  console.log(`info index ready ${timing.readyAt} ms after navigation start (index.js ${timing.render} ms ` +
    `to built and painted; ${wall} ms from goto to the check seeing it)`);
  const nRows = await page.locator('#latent-table tbody tr').count();
  check(nRows === expect.rows, 'index: one row per latent', `${nRows} rows, expected ${expect.rows}`);
  const countText = await page.textContent('#count');
  check(countText.replace(/,/g, '').includes(`${expect.rows} of ${expect.rows}`), 'index: "N of M latents"', countText);

  // Shown rows, in document order (a filtered-out row is hidden, or inside a hidden <tbody>).
  const visibleIds = () => page.evaluate(() =>
    [...document.querySelectorAll('#latent-table tbody tr')].filter((tr) => !tr.hidden && !tr.closest('[hidden]')).map((tr) => Number(tr.cells[0].textContent)));

  // search
  await page.fill('#search', expect.search);
  const got = await visibleIds();
  const want = new Set(expect.search_ids);
  const extra = got.filter((i) => !want.has(i)), gotSet = new Set(got);
  const missing = [...want].filter((i) => !gotSet.has(i));
  check(extra.length === 0 && missing.length === 0 && got.length === want.size,
    `index: search "${expect.search}" keeps exactly the expected latents`,
    `${got.length} shown, ${want.size} expected; extra ${extra.slice(0, 8)}; missing ${missing.slice(0, 8)}`);
  const cnt = (await page.textContent('#count')).replace(/,/g, '');
  check(cnt.startsWith(`${want.size} of `), 'index: count follows the search', cnt);
  await page.fill('#search', '');
  check((await visibleIds()).length === expect.rows, 'index: clearing the search shows every row');

  // sort by max, descending
  const maxCol = () => page.evaluate(() =>
    [...document.querySelectorAll('#latent-table tbody tr')].filter((tr) => !tr.hidden && !tr.closest('[hidden]')).map((tr) => [Number(tr.cells[0].textContent), Number(tr.cells[3].textContent.replace(/,/g, ''))]));
  await page.click('th[data-key="max"]');
  let cls = await page.getAttribute('th[data-key="max"]', 'class');
  if (!/\bdesc\b/.test(cls)) { await page.click('th[data-key="max"]'); cls = await page.getAttribute('th[data-key="max"]', 'class'); }
  const col = await maxCol();
  let bad = -1;
  for (let i = 1; i < col.length; i++) if (!(col[i][1] <= col[i - 1][1])) { bad = i; break; }
  check(bad < 0, 'index: sorted by max descending, the max column is non-increasing',
    bad < 0 ? '' : `row ${bad}: ${col[bad - 1][1]} then ${col[bad][1]}`);
  const sortedIds = col.map((r) => r[0]);
  check(sortedIds.some((id, i) => id !== i), 'index: the max order differs from the id order');
  check(col.length === expect.rows, 'index: sorting keeps every row', `${col.length}`);
  await page.screenshot({ path: path.join(shotDir, 'index.png') });
  // Rows scrolled into view show their top-token chips (built lazily as they come on screen).
  const chipless = async () => page.evaluate(() => {
    const wrap = document.querySelector('.table-wrap');
    const box = wrap.getBoundingClientRect();
    const out = { rows: 0, missing: [] };
    for (const tr of document.querySelectorAll('#latent-table tbody tr')) {
      const r = tr.getBoundingClientRect();
      if (tr.closest('[hidden]') || r.bottom <= box.top + 40 || r.top >= box.bottom) continue;
      out.rows++;
      if (!tr.classList.contains('dead') && tr.querySelectorAll('.tok').length === 0) out.missing.push(tr.cells[0].textContent);
    }
    return out;
  });
  await page.evaluate(() => { const w = document.querySelector('.table-wrap'); w.scrollIntoView(); w.scrollTop = w.scrollHeight * 0.6; });
  await page.waitForTimeout(250);
  const lazy = await chipless();
  check(lazy.rows > 0 && lazy.missing.length === 0, 'index: rows scrolled into view show their top tokens',
    `${lazy.rows} rows on screen, without tokens: ${lazy.missing.slice(0, 8)}`);
  noProblems(problems, 'index');

  // ---- feature page ----
  const id = expect.feature;
  await page.goto(base + 'feature.html#' + id);
  await page.waitForSelector('body[data-ready="1"]', { timeout: 30000 });
  const ex = await page.evaluate(() => [...document.querySelectorAll('#top .ex')].map((e) => {
    const cur = e.querySelectorAll('.tok.cur');
    return { n: cur.length, title: cur[0] ? cur[0].title : null, text: cur[0] ? cur[0].textContent : null };
  }));
  check(ex.length === expect.top.length, `feature ${id}: one line per top example`, `${ex.length} lines, expected ${expect.top.length}`);
  expect.top.forEach((t, i) => {
    const e = ex[i];
    check(e.n === 1, `feature ${id}: example ${i} outlines exactly one token`, `${e.n}`);
    const a = Number(e.title);
    const close = e.title !== '' && Number.isFinite(a) && (a === t.act || Math.abs(a - t.act) <= 1e-6 * Math.max(Math.abs(t.act), 1e-30));
    check(close, `feature ${id}: example ${i} activation`, `title "${e.title}", expected ${t.act}`);
    check(e.text === t.text, `feature ${id}: example ${i} token text`,
      `${JSON.stringify(e.text.slice(0, 80))}, expected ${JSON.stringify(t.text.slice(0, 80))}`);
  });
  // coloured tokens: a token with activation > 0 has a background colour
  const colours = await page.evaluate(() => {
    const out = { coloured: 0, checked: 0, plain: [] };
    for (const t of document.querySelectorAll('#top .ex .tok')) {
      const a = Number(t.title);
      if (!(a > 0)) continue;
      out.checked++;
      const bg = getComputedStyle(t).backgroundColor;
      if (bg && bg !== 'rgba(0, 0, 0, 0)' && bg !== 'transparent') out.coloured++;
      else if (out.plain.length < 3) out.plain.push(t.title + ':' + bg);
    }
    return out;
  });
  check(colours.checked > 0 && colours.coloured === colours.checked,
    `feature ${id}: tokens with activation > 0 have a background colour`, `${colours.coloured} of ${colours.checked}; e.g. ${colours.plain}`);
  const cur = page.locator('#top .ex .tok.cur').first();
  await cur.scrollIntoViewIfNeeded();
  await cur.hover();
  const insp = await page.evaluate(() => { const b = document.querySelector('.inspector'); return b && !b.hidden ? b.textContent : null; });
  check(insp !== null && insp.includes('#'), `feature ${id}: hovering a token shows it in the status line`, String(insp));
  await page.screenshot({ path: path.join(shotDir, 'feature.png') });
  noProblems(problems, 'feature ' + id);

  // next (prev when the feature is the last latent)
  const firstUrl = page.url();
  const [link, to] = id + 1 < expect.rows ? ['next', id + 1] : ['prev', id - 1];
  await page.evaluate(() => { document.body.dataset.ready = '0'; });
  await page.click('#' + link);
  await page.waitForSelector('body[data-ready="1"]', { timeout: 30000 });
  const hash = await page.evaluate(() => location.hash);
  check(hash === '#' + to, `feature ${id}: "${link}" goes to #${to}`, hash);
  const title = await page.textContent('#title');
  check(title.includes(String(to)), `feature ${id}: "${link}" re-renders for the new id`, title);
  check(page.url().split('#')[0] === firstUrl.split('#')[0], `feature ${id}: "${link}" stays on feature.html`, page.url());
  // an id out of range shows a message, no exception
  await page.evaluate(() => { document.body.dataset.ready = '0'; location.hash = '#999999999'; });
  await page.waitForSelector('body[data-ready="1"]', { timeout: 30000 });
  check(await page.locator('#main .error').count() === 1, 'feature: an id out of range shows an error message');
  noProblems(problems, 'feature navigation');
});
