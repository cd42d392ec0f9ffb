// saelab serve in headless Chromium (tests/steer/test_serve.cpp starts the server): type text and
// see its tokens coloured by the expected activations, open a latent's dashboard, move a steering
// slider and see a steered completion. Screenshots go to SHOT_DIR.
//   node serve_check.mjs URL SHOT_DIR EXPECT.json
import fs from 'node:fs';
import path from 'node:path';
import { launch, check, watch, CheckError } from './common.mjs';

const [url, shotDir, expectPath] = process.argv.slice(2);
if (!expectPath) { console.error('usage: node serve_check.mjs URL SHOT_DIR EXPECT.json'); process.exit(2); }
const expect = JSON.parse(fs.readFileSync(expectPath, 'utf8'));
fs.mkdirSync(shotDir, { recursive: true });

const browser = await launch();
const problems = [];
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  watch(page, problems, url);
  page.on('response', (r) => { if (r.status() >= 400) problems.push(`HTTP ${r.status()} for ${r.url()}`); });
  await page.goto(url);
  await page.waitForSelector('body[data-ready="1"]', { timeout: 20000 });
  check((await page.textContent('#model')).includes(expect.hook), 'the header names the hook');

  // Text: tokens coloured by the expected latent's activations.
  await page.fill('#text', expect.text);
  await page.click('#analyse');
  await page.waitForSelector('#tokens .tok', { timeout: 60000 });
  const toks = await page.$$eval('#tokens .tok', (els) => els.map((e) => ({
    text: e.textContent, value: Number(e.dataset.value), bg: getComputedStyle(e).backgroundColor })));
  check(toks.length === expect.values.length, 'one span per token', `${toks.length} vs ${expect.values.length}`);
  const status = await page.textContent('#text-status');
  check(status.includes('latent ' + expect.latent), 'coloured by the latent with the highest peak', status);
  let worst = 0;
  toks.forEach((t, i) => { worst = Math.max(worst, Math.abs(t.value - expect.values[i]) / Math.max(1, Math.abs(expect.values[i]))); });
  check(worst < 1e-3, 'each token carries its activation', `max relative difference ${worst.toExponential(2)}`);
  const alpha = (bg) => { const m = bg.match(/rgba?\(([^)]*)\)/); const p = m ? m[1].split(',') : []; return p.length === 4 ? Number(p[3]) : 1; };
  const coloured = toks.filter((t) => t.value > 0 && alpha(t.bg) > 0).length;
  const positive = toks.filter((t) => t.value > 0).length;
  check(positive > 0 && coloured === positive, 'every token where the latent fires is coloured', `${coloured} of ${positive}`);
  check(toks.filter((t) => t.value <= 0).every((t) => alpha(t.bg) === 0), 'tokens where it does not fire are not');
  check(toks.map((t) => t.text).join('') === expect.display, 'the tokens spell the text');
  await page.click('#tokens .tok >> nth=' + expect.peak_pos);
  const tokenLatents = await page.$$eval('#token-latents li button.colour', (b) => b.map((x) => Number(x.textContent)));
  check(tokenLatents.includes(expect.latent), 'clicking a token lists its top latents', tokenLatents.join(','));
  await page.screenshot({ path: path.join(shotDir, 'serve-text.png'), fullPage: true });

  // A latent's dashboard: the report's feature page.
  const first = page.locator('#peaks li').first();
  const id = Number(await first.locator('button.colour').textContent());
  await first.locator('a.dash').click();
  await page.waitForURL(/\/report\/feature\.html#/);
  await page.waitForFunction((want) => document.getElementById('title').textContent === 'Latent ' + want, id,
    { timeout: 20000 });
  check(true, 'the latent opens its dashboard', 'Latent ' + id);
  await page.waitForSelector('body[data-ready="1"]', { timeout: 20000 });
  await page.screenshot({ path: path.join(shotDir, 'serve-dashboard.png'), fullPage: true });
  await page.goBack();
  await page.waitForSelector('body[data-ready="1"]');

  // Steering: a slider moved by the keyboard regenerates both completions.
  await page.fill('#prompt', expect.prompt);
  await page.fill('#new-tokens', '16');
  await page.click('#add-slider');
  await page.fill('#sliders .slider-latent', String(expect.steer_latent));
  const slider = page.locator('#sliders .slider-value');
  await slider.focus();
  for (let i = 0; i < 2; ++i) await page.keyboard.press('ArrowRight');  // 0 -> 1x its max
  await page.waitForFunction(() => document.getElementById('steer-status').textContent.startsWith('done'), null,
    { timeout: 120000 });
  const plain = await page.textContent('#default');
  const steered = await page.textContent('#steered');
  check(plain.length > 0 && steered.length > 0, 'both completions are shown');
  check(plain === expect.default, 'the default completion is the greedy one', JSON.stringify(plain));
  check(steered !== plain, 'the steered completion differs', JSON.stringify(steered));
  check((await page.textContent('#steer-desc')).includes(expect.steer_latent + ':+1x'), 'the steering is named');
  await page.screenshot({ path: path.join(shotDir, 'serve-steer.png'), fullPage: true });
  check(problems.length === 0, 'no page errors or outside requests', problems.join('; '));
} catch (e) {
  console.error('FAIL ' + (e instanceof CheckError ? e.message : e.stack));
  if (problems.length) console.error('problems: ' + problems.join('; '));
  await browser.close();
  process.exit(1);
}
await browser.close();
console.log('PASS serve');
