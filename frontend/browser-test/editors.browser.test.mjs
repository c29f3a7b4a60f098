// Real-browser test: Debian's headless Chromium, driven by playwright-core, renders both editors
// (real React, @grafana/ui and Monaco; fake backend resources) from the harness built by
// `npm run build:harness`, types a rule and params, and checks what the editors emit and show.
// Screenshots go to test-output/*.png.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const ROOT = fileURLToPath(new URL('../test-output/harness/', import.meta.url));
const ICONS = fileURLToPath(new URL('../node_modules/@grafana/ui/dist/public/img/icons/', import.meta.url));
const OUT = fileURLToPath(new URL('../test-output/', import.meta.url));
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.ttf': 'font/ttf', '.svg': 'image/svg+xml', '.woff2': 'font/woff2' };

let server;
let baseUrl;
let context;
let profile;
let page;
const pageErrors = [];

before(async () => {
  await stat(join(ROOT, 'index.html')); // built by `npm run build:harness`
  server = createServer(async (req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url, 'http://x').pathname)).replace(/^(\.\.[/\\])+/, '');
    // Grafana serves @grafana/ui's icons under public/build/img/icons/.
    const file = path.startsWith('/public/build/img/icons/')
      ? join(ICONS, path.slice('/public/build/img/icons/'.length))
      : join(ROOT, path === '/' ? 'index.html' : path);
    try {
      const body = await readFile(file);
      res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' });
      res.end(body);
    } catch {
      res.writeHead(404);
      res.end('not found');
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${server.address().port}/`;
  profile = await mkdtemp(join(tmpdir(), 'restbridge-chromium-'));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1600, height: 1300 },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  page = context.pages()[0] ?? (await context.newPage());
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  page.setDefaultTimeout(20000);
  await page.goto(baseUrl);
  await page.locator('#config .monaco-editor .view-lines').waitFor();
});

after(async () => {
  await context?.close();
  await new Promise((resolve) => (server ? server.close(resolve) : resolve()));
  if (profile) {
    await rm(profile, { recursive: true, force: true });
  }
});

const RULE = [
  '- id: temps',
  '  title: Temperatures',
  '  description: Hourly temperature for one place',
  '  request:',
  '    methd: GET',
  '    url: /v1/forecast',
  '    query:',
  '      latitude: ${lat}',
  '      city: ${city}',
  '  params:',
  '    - name: lat',
  '      default: "52.52"',
  "      pattern: '^-?[0-9]+(\\.[0-9]+)?$'",
  '    - name: city',
  '      options: [Berlin, Paris]',
  '  response:',
  '    fields:',
  '      - {name: time, path: $.time, type: time}',
  '      - {name: t, path: $.t, type: number}',
  '',
].join('\n');

/** A clipboard paste into the focused Monaco editor, as when an admin pastes a rule. */
async function paste(text) {
  await page.evaluate((t) => {
    const dt = new DataTransfer();
    dt.setData('text/plain', t);
    const target = document.activeElement;
    target.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }));
  }, text);
}

const lastConfig = () => page.evaluate(() => window.__restbridge.config.at(-1));
const lastQuery = () => page.evaluate(() => window.__restbridge.query.at(-1));

test('config editor: typed rule is emitted, validated and its problem shown next to it', async () => {
  const editor = page.locator('#config .monaco-editor');
  await editor.locator('.view-lines').click();
  await page.keyboard.press('Control+A');
  await page.keyboard.press('Delete');
  // The rule arrives as a paste (typed newlines would be re-indented by Monaco's auto-indent);
  // the fix below is typed key by key.
  await paste(RULE);
  assert.equal(await page.evaluate(() => window.__restbridge.config.at(-1)?.jsonData.rules[0].id), 'temps');

  const problem = page.getByTestId('rule-temps').getByTestId('rule-problem');
  await problem.waitFor();
  assert.match(await problem.innerText(), /unknown field `methd`/);
  assert.match(await problem.innerText(), /line 5/);
  // Monaco shows the problem in the text as well.
  await page.locator('#config .monaco-editor .squiggly-error').first().waitFor();
  assert.match(await page.getByTestId('rules-status').innerText(), /1 problem/);
  await page.locator('#config-pane').screenshot({ path: join(OUT, 'config-editor-problem.png') });

  // Fix the typo by typing: select the word and type the right key.
  await page.locator('#config .monaco-editor .view-line span', { hasText: 'methd' }).last().dblclick();
  await page.keyboard.type('method');
  await page.getByTestId('rules-status').getByText('Valid: 1 rule').waitFor();
  assert.equal(await page.getByTestId('rule-temps').getByTestId('rule-problem').count(), 0);

  const cfg = await lastConfig();
  assert.deepEqual(cfg.jsonData.rules, [
    {
      id: 'temps',
      title: 'Temperatures',
      description: 'Hourly temperature for one place',
      request: { method: 'GET', url: '/v1/forecast', query: { latitude: '${lat}', city: '${city}' } },
      params: [
        { name: 'lat', default: '52.52', pattern: '^-?[0-9]+(\\.[0-9]+)?$' },
        { name: 'city', options: ['Berlin', 'Paris'] },
      ],
      response: {
        fields: [
          { name: 'time', path: '$.time', type: 'time' },
          { name: 't', path: '$.t', type: 'number' },
        ],
      },
    },
  ]);
  assert.equal(cfg.jsonData.timeout, 30);

  // A secret the rule does not have yet: the editor offers an input for it.
  await page.getByLabel('Bearer token').first().click();
  await page.locator('#restbridge-secret-bearerToken').fill('t0ken');
  const afterSecret = await lastConfig();
  assert.deepEqual(afterSecret.jsonData.auth, { type: 'bearer' });
  assert.equal(afterSecret.secureJsonData.bearerToken, 't0ken');

  const resources = await page.evaluate(() => window.__restbridge.resources);
  assert.ok(resources.includes('POST /api/datasources/uid/rb-uid/resources/validate'), resources.join(', '));
  await page.locator('#config-pane').screenshot({ path: join(OUT, 'config-editor.png') });
});

test('query editor: picks the rule, takes params, shows errors and the rendered request', async () => {
  const pane = page.locator('#query-pane');
  await pane.getByLabel('Reload rules').click();
  await pane.locator('#restbridge-rule').click();
  await page.getByText('Temperatures', { exact: true }).last().click();
  assert.deepEqual(await lastQuery(), { refId: 'A', rule: 'temps', params: {} });
  assert.equal(await pane.getByTestId('rule-description').innerText(), 'Hourly temperature for one place');
  assert.equal(await pane.getByLabel('param lat').getAttribute('placeholder'), 'default: 52.52');

  const lat = pane.getByLabel('param lat');
  await lat.click();
  await page.keyboard.type('48.1x');
  await pane.getByText('does not match the pattern').waitFor();
  assert.deepEqual((await lastQuery()).params, { lat: '48.1x' });
  await page.keyboard.press('Backspace');
  await pane.getByText('does not match the pattern').waitFor({ state: 'detached' });

  await pane.locator('#restbridge-A-param-city').click();
  await page.getByText('Paris', { exact: true }).last().click();
  assert.deepEqual(await lastQuery(), { refId: 'A', rule: 'temps', params: { lat: '48.1', city: 'Paris' } });
  assert.ok((await page.evaluate(() => window.__restbridge.runs)) >= 2);

  const request = pane.getByTestId('preview-request');
  await request.getByText('https://api.example.com/v1/forecast?city=Paris&latitude=48.1').waitFor();
  assert.match(await request.innerText(), /GET https:\/\/api\.example\.com\/v1\/forecast\?city=Paris&latitude=48\.1/);
  await pane.getByTestId('preview-frame-0').getByText('2.25').waitFor();
  await pane.screenshot({ path: join(OUT, 'query-editor.png') });
  await page.screenshot({ path: join(OUT, 'editors.png'), fullPage: true });
  assert.deepEqual(pageErrors, []);
});
