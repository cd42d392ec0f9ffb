// Shared by the browser checks: launching Debian's Chromium through playwright-core, failure
// listeners, and reporting.
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

export class CheckError extends Error {}

let playwright;
try {
  playwright = await import('playwright-core');
} catch (e) {
  console.error('FAIL setup: playwright-core is not installed (run: npm ci --prefix tests/browser): ' + e.message);
  process.exit(1);
}

export function args(name, usage) {
  const a = process.argv.slice(2);
  if (a.length !== 3) {
    console.error(`usage: node ${name} ${usage}`);
    process.exit(2);
  }
  const [reportDir, shotDir, expectPath] = a.map((p) => path.resolve(p));
  const expect = JSON.parse(fs.readFileSync(expectPath, 'utf8'));
  fs.mkdirSync(shotDir, { recursive: true });
  return { reportDir, shotDir, expect };
}

export function fileUrl(p) {
  return pathToFileURL(p).href;
}

export function check(cond, name, detail) {
  if (!cond) throw new CheckError(`${name}: ${detail ?? 'failed'}`);
  console.log(`ok   ${name}${detail && process.env.VERBOSE ? ' (' + detail + ')' : ''}`);
}

export async function launch() {
  const executablePath = process.env.SAELAB_CHROMIUM || '/usr/bin/chromium';
  return playwright.chromium.launch({
    executablePath,
    headless: true,
    args: ['--no-sandbox', '--allow-file-access-from-files', '--disable-gpu', '--no-first-run'],
  });
}

// Any page error, console error, dialog or (when `allowed` is given) request outside the report
// directory is recorded as a failure.
export function watch(page, problems, allowed) {
  page.on('pageerror', (e) => problems.push('pageerror: ' + (e && e.message)));
  page.on('console', (m) => { if (m.type() === 'error') problems.push('console error: ' + m.text()); });
  page.on('dialog', (d) => { problems.push(`dialog (${d.type()}): ${d.message()}`); d.dismiss().catch(() => {}); });
  page.on('requestfailed', (r) => problems.push('request failed: ' + r.url().slice(0, 200) + ' ' + (r.failure() && r.failure().errorText)));
  if (allowed) {
    page.on('request', (r) => {
      if (!r.url().startsWith(allowed)) problems.push('request outside the report: ' + r.url().slice(0, 200));
    });
  }
}

export function noProblems(problems, where) {
  check(problems.length === 0, `no page errors, console errors or dialogs (${where})`, problems.slice(0, 5).join('; '));
}

export async function main(fn) {
  let browser = null;
  try {
    browser = await launch();
    await fn(browser);
    console.log('PASS');
    await browser.close();
    process.exit(0);
  } catch (e) {
    console.error(e instanceof CheckError ? 'FAIL ' + e.message : 'FAIL (unexpected) ' + (e && e.stack || e));
    if (browser) await browser.close().catch(() => {});
    process.exit(1);
  }
}
