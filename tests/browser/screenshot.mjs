// Screenshots of a report for people (not a check): node screenshot.mjs REPORT_DIR OUT_DIR [ID ...]
// writes OUT_DIR/index.png and OUT_DIR/feature-<ID>.png, full pages.
import fs from 'node:fs';
import path from 'node:path';
import { fileUrl, launch } from './common.mjs';

const [reportDir, outDir, ...ids] = process.argv.slice(2);
if (!reportDir || !outDir) {
  console.error('usage: node screenshot.mjs REPORT_DIR OUT_DIR [ID ...]');
  process.exit(2);
}
fs.mkdirSync(outDir, { recursive: true });
const browser = await launch();
const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
await page.goto(fileUrl(path.resolve(reportDir, 'index.html')));
await page.waitForSelector('body[data-ready="1"]', { timeout: 30000 });
await page.screenshot({ path: path.join(outDir, 'index.png'), fullPage: false });
for (const id of ids) {
  await page.goto(fileUrl(path.resolve(reportDir, 'feature.html')) + '#' + id);
  await page.waitForSelector('body[data-ready="1"]', { timeout: 30000 });
  await page.screenshot({ path: path.join(outDir, `feature-${id}.png`), fullPage: false });
}
await browser.close();
console.log('wrote', outDir);
