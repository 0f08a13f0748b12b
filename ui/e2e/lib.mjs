// Shared helpers for the Playwright tests: the browser (Debian's Chromium via
// playwright-core), the API, screenshots, and the mouse gestures a person
// makes on the canvas (drag from the palette, drag between handles).
import { mkdir } from 'node:fs/promises';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
export const SCREENSHOTS = join(here, '..', 'test-results', 'screenshots');

export const API_URL = (process.env.MONEYFLOW_URL ?? 'http://127.0.0.1:8123').replace(/\/$/, '');
export const UI_URL = (process.env.MONEYFLOW_UI_URL ?? `${API_URL}/ui/`).replace(/\/?$/, '/');
export const ADMIN_TOKEN = process.env.MONEYFLOW_ADMIN_TOKEN ?? '';

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
];

export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: CHROMIUM_ARGS,
    headless: true,
  });
}

/** A fresh context at 1280×800 with console errors collected. */
export async function newPage(browser) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, deviceScaleFactor: 1 });
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  const errors = [];
  page.on('pageerror', (error) => errors.push(String(error)));
  page.on('console', (message) => {
    // A 404 the UI expects (a company without rules yet) is logged by the browser itself; server errors are caught below.
    if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) errors.push(message.text());
  });
  page.on('response', (response) => {
    if (response.status() >= 500) errors.push(`${response.status()} ${response.request().method()} ${response.url()}`);
  });
  return { context, page, errors };
}

export async function screenshot(page, name) {
  await mkdir(SCREENSHOTS, { recursive: true });
  const path = join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({ path });
  return path;
}

/** Calls the API with the admin token; returns the parsed JSON (throws on an error status). */
export async function api(path, { method = 'GET', body, token = ADMIN_TOKEN } = {}) {
  const response = await fetch(`${API_URL}${path}`, {
    method,
    headers: { Authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  const json = text ? JSON.parse(text) : undefined;
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
  return json;
}

export function uniqueSuffix() {
  return `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
}

export async function signIn(page, token = ADMIN_TOKEN) {
  await page.goto(UI_URL);
  await page.getByLabel('Admin token or company API key').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

/** Drags a palette item onto the canvas with the mouse (HTML5 drag and drop), dropping at (x, y) of the canvas. */
export async function dragFromPalette(page, testId, x, y) {
  const item = page.getByTestId(`palette-${testId}`);
  await item.scrollIntoViewIfNeeded();
  const from = await item.boundingBox();
  const canvas = await page.getByTestId('canvas').boundingBox();
  if (!from || !canvas) throw new Error('palette item or canvas not visible');
  await page.mouse.move(from.x + from.width / 2, from.y + from.height / 2);
  await page.mouse.down();
  await page.mouse.move(from.x + from.width / 2 + 24, from.y + from.height / 2, { steps: 4 });
  await page.mouse.move(canvas.x + x, canvas.y + y, { steps: 12 });
  await page.mouse.up();
}

/** The centre of a node's handle: `success`, `failure`, or the input at the top. */
export async function handleCenter(page, nodeId, handle) {
  const selector =
    handle === 'in'
      ? `.react-flow__handle[data-nodeid="${nodeId}"][data-handlepos="top"]`
      : `.react-flow__handle[data-nodeid="${nodeId}"][data-handleid="${handle}"]`;
  const box = await page.locator(selector).boundingBox();
  if (!box) throw new Error(`handle ${handle} of ${nodeId} not visible`);
  return { x: box.x + box.width / 2, y: box.y + box.height / 2 };
}

/** Drags from `source`'s `state` handle to `target`'s input, as a person connects two nodes. */
export async function connect(page, source, state, target) {
  const from = await handleCenter(page, source, state);
  const to = await handleCenter(page, target, 'in');
  await page.mouse.move(from.x, from.y);
  await page.mouse.down();
  await page.mouse.move((from.x + to.x) / 2, (from.y + to.y) / 2 + 10, { steps: 8 });
  await page.mouse.move(to.x, to.y, { steps: 8 });
  await page.mouse.up();
}

/** Waits until the server's validation has answered for the current draft. */
export async function waitForValidation(page, expected) {
  const status = page.getByTestId('validation-status');
  if (expected === 'valid') await status.filter({ hasText: 'Valid' }).waitFor();
  else await status.filter({ hasText: /problem/ }).waitFor();
}

/** The original README's flowchart, as `moneyflow up` seeds it for `demo`. */
export const DEMO_RULES = [
  { node_type: 'condition', node_id: 'is-physical-product', expect: [{ field: '$context.event.type', operator: 'eq', value: ['product'] }], ui: { x: 0, y: 0 } },
  {
    node_type: 'task',
    node_id: 'generate-shipment',
    depends_on: [{ node_id: 'is-physical-product', state: 'success' }],
    task_name: 'payment.tasks.generate_shipment',
    parameters: { product_id: '$context.event.product.id' },
    ui: { x: 0, y: 150 },
  },
  {
    node_type: 'condition',
    node_id: 'is-book',
    depends_on: [{ node_id: 'generate-shipment', state: 'success' }],
    expect: [{ field: '$context.event.product.type', operator: 'in', value: ['book', 'ebook'] }],
    ui: { x: 0, y: 300 },
  },
  {
    node_type: 'task',
    node_id: 'duplicate-shipment-royalties',
    depends_on: [{ node_id: 'is-book', state: 'success' }],
    task_name: 'payment.tasks.duplicate_shipment',
    parameters: { department: 'royalties' },
    ui: { x: 0, y: 450 },
  },
  {
    node_type: 'task',
    node_id: 'notify-royalties',
    depends_on: [{ node_id: 'duplicate-shipment-royalties', state: 'success' }],
    task_name: 'payment.tasks.notify',
    parameters: { channel: 'royalties', message: 'A book was sold: a copy of its packing slip is attached.' },
    ui: { x: 0, y: 600 },
  },
  {
    node_type: 'task',
    node_id: 'generate-commission',
    depends_on: [{ node_id: 'is-physical-product', state: 'success' }],
    task_name: 'payment.tasks.generate_commission',
    parameters: { agent_id: '$context.event.agent_id' },
    ui: { x: 300, y: 150 },
  },
];

/** A flow whose webhook call is refused (this server does not call loopback addresses): its runs fail at `call-erp`. */
export const HOOK_RULES = [
  { node_type: 'condition', node_id: 'is-product', expect: [{ field: '$context.event.type', operator: 'eq', value: ['product'] }], ui: { x: 0, y: 0 } },
  {
    node_type: 'task',
    node_id: 'call-erp',
    depends_on: [{ node_id: 'is-product', state: 'success' }],
    task_name: 'payment.tasks.http_request',
    parameters: { url: 'http://127.0.0.1:9/orders', body: { total: '$context.event.total' } },
    retry: { max_attempts: 1 },
    ui: { x: 0, y: 160 },
  },
  {
    node_type: 'task',
    node_id: 'notify-finance',
    depends_on: [{ node_id: 'call-erp', state: 'success' }],
    task_name: 'payment.tasks.notify',
    parameters: { channel: 'finance', message: 'Order sent to the ERP.' },
    ui: { x: 0, y: 320 },
  },
];

/** Polls `GET /runs/{run_id}` until the run has finished (or 15 s pass); returns it. */
export async function waitForRun(runId) {
  const deadline = Date.now() + 15_000;
  let run;
  do {
    run = await api(`/runs/${runId}`);
    if (['succeeded', 'failed', 'aborted'].includes(run.status)) return run;
    await new Promise((resolve) => setTimeout(resolve, 200));
  } while (Date.now() < deadline);
  return run;
}

/**
 * Runs the steps of a scenario in order as subtests; once one fails, the
 * rest are skipped instead of each waiting for its own timeout.
 */
export function steps(t, page) {
  let failed = false;
  return async (name, fn) => {
    await t.test(name, async (step) => {
      if (failed) {
        step.skip('an earlier step failed');
        return;
      }
      try {
        await fn(step);
      } catch (error) {
        failed = true;
        if (page) await screenshot(page, `failure-${name.replace(/[^a-z0-9]+/gi, '-')}`).catch(() => undefined);
        throw error;
      }
    });
  };
}

/** Polls `check` until it holds (a person would wait for the screen to change). */
export async function waitUntil(check, what, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
