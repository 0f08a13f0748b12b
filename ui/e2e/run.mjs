// `npm run e2e`: runs the Playwright tests (playwright-core driving Debian's
// Chromium) against a MoneyFlow server.
//
//   MONEYFLOW_URL           the server (default http://127.0.0.1:8123)
//   MONEYFLOW_ADMIN_TOKEN   its admin token (required)
//   MONEYFLOW_UI_URL        where the UI is served (optional): by default the
//                           server's own /ui/ when it serves the canvas, else
//                           this runner builds the UI and serves dist/ with
//                           `vite preview`, proxying the API to MONEYFLOW_URL
//                           (E2E_SKIP_BUILD=1 reuses an existing dist/).
//
// Screenshots land in test-results/screenshots/.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const apiUrl = (process.env.MONEYFLOW_URL ?? 'http://127.0.0.1:8123').replace(/\/$/, '');

function fail(message) {
  console.error(`e2e: ${message}`);
  process.exit(2);
}

if (!process.env.MONEYFLOW_ADMIN_TOKEN) fail('set MONEYFLOW_ADMIN_TOKEN to the server’s admin token');
const chromium = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
if (!existsSync(chromium)) fail(`no Chromium at ${chromium}: apt-get install -y chromium (or set CHROMIUM_PATH)`);

try {
  const health = await fetch(`${apiUrl}/`);
  if (!health.ok) fail(`${apiUrl}/ answered ${health.status}`);
} catch (error) {
  fail(`cannot reach the MoneyFlow server at ${apiUrl} (${error.message}); start it with \`moneyflow up\``);
}

async function servesUi(url) {
  try {
    const response = await fetch(url);
    return response.ok && (await response.text()).includes('<div id="root">');
  } catch {
    return false;
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

function run(command, args, env = {}) {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } });
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}

let uiUrl = process.env.MONEYFLOW_UI_URL;
let preview;
if (!uiUrl && (await servesUi(`${apiUrl}/ui/`))) uiUrl = `${apiUrl}/ui/`;
if (!uiUrl) {
  // Build what is being tested (a second or two), unless told the build is fresh.
  if (process.env.E2E_SKIP_BUILD !== '1' || !existsSync(join(root, 'dist', 'index.html'))) {
    console.log('e2e: building the UI');
    if ((await run('npx', ['vite', 'build', '--logLevel', 'warn'])) !== 0) fail('the UI build failed');
  }
  const port = await freePort();
  preview = spawn('npx', ['vite', 'preview', '--port', String(port), '--strictPort', '--host', '127.0.0.1'], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, MONEYFLOW_URL: apiUrl },
    detached: true,
  });
  uiUrl = `http://127.0.0.1:${port}/ui/`;
  const deadline = Date.now() + 30_000;
  while (!(await servesUi(uiUrl))) {
    if (Date.now() > deadline) fail(`vite preview did not start on ${uiUrl}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  console.log(`e2e: serving dist/ at ${uiUrl} (API proxied to ${apiUrl})`);
} else {
  console.log(`e2e: UI at ${uiUrl}`);
}

const only = process.argv.slice(2);
const files = only.length > 0 ? only : readdirSync(join(root, 'e2e')).filter((name) => name.endsWith('.test.mjs')).map((name) => join('e2e', name));
const code = await run(process.execPath, ['--test', '--test-concurrency=1', ...files], { MONEYFLOW_URL: apiUrl, MONEYFLOW_UI_URL: uiUrl });
if (preview) {
  try {
    process.kill(-preview.pid, 'SIGTERM');
  } catch {
    // Already gone.
  }
}
process.exit(code);
