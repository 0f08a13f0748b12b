// A tour of every screen at 1280×800, with a screenshot of each (to look
// at), checking along the way what each screen is for: sign-in, the company
// picker, the editor on the README's flow, the condition and task panels,
// path completion, problems, undo, copy/paste, version history and diff,
// a version opened read-only, JSON export, a test run drawn on the canvas,
// the runs page with no runs, a company key's view.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { api, DEMO_RULES, launchBrowser, newPage, screenshot, signIn, steps, UI_URL, uniqueSuffix, waitForValidation, waitUntil } from './lib.mjs';

let browser;
let page;
let errors;
const companyId = `acme-${uniqueSuffix()}`;

before(async () => {
  browser = await launchBrowser();
  ({ page, errors } = await newPage(browser));
  // Acme Books: the README's flow as version 1, and a version 2 that adds an invoice and changes two nodes.
  await api('/companies', { method: 'POST', body: { name: 'Acme Books', id: companyId } });
  await api('/payment-rules/', { method: 'POST', body: { company_id: companyId, rules: DEMO_RULES } });
  const v2 = structuredClone(DEMO_RULES);
  v2.find((node) => node.node_id === 'is-book').expect[0].value.push('audiobook');
  v2.find((node) => node.node_id === 'generate-commission').parameters.rate = '0.08';
  v2.push({
    node_type: 'task',
    node_id: 'generate-invoice',
    depends_on: [{ node_id: 'is-physical-product', state: 'success' }],
    task_name: 'payment.tasks.generate_invoice',
    parameters: { total: '$context.event.total', currency: '$context.event.currency' },
    ui: { x: 600, y: 150 },
  });
  await api('/payment-rules/', { method: 'POST', body: { company_id: companyId, rules: v2 } });
});

after(async () => {
  await browser?.close();
});

const node = (id) => page.getByTestId(`node-${id}`);

/** Fits the whole flow in view (a click on a node outside it would scroll the canvas instead of panning it). */
async function fitWholeFlow() {
  await page.getByRole('button', { name: 'Fit View' }).click();
  await page.waitForTimeout(350);
}

test('a tour of every screen', async (t) => {
  const step = steps(t, page);

  await step('sign-in', async () => {
    await page.goto(UI_URL);
    await page.getByRole('heading', { name: 'Sign in to the canvas' }).waitFor();
    await screenshot(page, '01-sign-in');
    await page.getByLabel('Admin token or company API key').fill('not-a-token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('The server does not know this token').waitFor();
    await screenshot(page, '02-sign-in-refused');
  });

  await step('company picker', async () => {
    await signIn(page);
    await page.getByRole('heading', { name: 'Companies' }).waitFor();
    await page.getByRole('button', { name: /Open Acme Books/ }).first().waitFor();
    await screenshot(page, '03-company-picker');
    await page.getByRole('button', { name: 'New company' }).click();
    await page.getByRole('form', { name: 'New company' }).waitFor();
    await screenshot(page, '04-company-create');
    await page.getByRole('button', { name: 'Cancel' }).click();
  });

  await step('editor with the README flow', async () => {
    await page.getByLabel('Search companies').fill(companyId);
    await page.getByRole('button', { name: /Open Acme Books/ }).click();
    await node('generate-invoice').waitFor();
    await waitForValidation(page, 'valid');
    assert.match(await page.getByTestId('version-status').innerText(), /Version 2 · saved/);
    assert.equal(await page.locator('.react-flow__node').count(), 7);
    await page.waitForTimeout(300);
    await screenshot(page, '05-editor');
  });

  await step('condition panel with path completion', async () => {
    await node('is-book').click();
    const panel = page.getByRole('complementary', { name: 'Settings of is-book' });
    await panel.waitFor();
    assert.equal(await panel.getByLabel('Operator of expectation 1').inputValue(), 'in');
    await screenshot(page, '06-condition-panel');
    const field = panel.getByLabel('Field of expectation 1');
    await field.fill('$context.event.pro');
    const options = page.getByRole('listbox', { name: 'Suggestions' });
    await options.getByText('$context.event.product.type').waitFor();
    await screenshot(page, '07-path-completion');
    await field.press('ArrowDown');
    await field.press('Enter');
    assert.match(await field.inputValue(), /^\$context\.event\.product\./);
    // Undo the edit from the canvas (in a text field, Ctrl+Z is the field's own undo).
    await page.locator('.react-flow__pane').click({ position: { x: 40, y: 40 } });
    await page.keyboard.press('Control+z');
    await page.getByTestId('version-status').filter({ hasText: 'Version 2 · saved' }).waitFor();
  });

  await step('task panel with upstream outputs', async () => {
    await node('notify-royalties').click();
    const panel = page.getByRole('complementary', { name: 'Settings of notify-royalties' });
    await panel.getByLabel('Parameter channel').waitFor();
    await screenshot(page, '08-task-panel');
    const to = panel.getByLabel('Parameter to');
    await to.fill('$context.nodes.');
    await page.getByRole('listbox', { name: 'Suggestions' }).getByText('$context.nodes.duplicate-shipment-royalties.output.shipment_id').waitFor();
    await to.press('Escape');
    await to.fill('');
    await page.getByTestId('version-status').filter({ hasText: 'Version 2 · saved' }).waitFor();
  });

  await step('problems on the canvas and in the list, then undo', async () => {
    await node('generate-shipment').click();
    const productId = page.getByLabel('Parameter product_id');
    await productId.fill('');
    await page.getByLabel('Max attempts').fill('3');
    await waitForValidation(page, 'invalid');
    const problems = page.getByRole('region', { name: 'Problems' });
    await problems.getByText(/product_id/).first().waitFor();
    // A click on the problem selects the node at fault.
    await page.locator('.react-flow__pane').click({ position: { x: 40, y: 40 } });
    await problems.getByRole('button', { name: /generate-shipment/ }).click();
    await page.getByRole('complementary', { name: 'Settings of generate-shipment' }).waitFor();
    await page.waitForTimeout(400);
    await screenshot(page, '09-problems');
    await page.locator('.react-flow__pane').click({ position: { x: 40, y: 40 } });
    // Undo both edits (the canvas has the focus after the click).
    await page.keyboard.press('Control+z');
    await page.keyboard.press('Control+z');
    await waitForValidation(page, 'valid');
    assert.match(await page.getByTestId('version-status').innerText(), /Version 2 · saved/);
  });

  await step('copy, paste, delete and redo', async () => {
    // The problems step zoomed onto a node: bring the whole flow back into view first.
    await fitWholeFlow();
    await node('generate-invoice').click();
    await page.locator('.react-flow__pane').click({ position: { x: 40, y: 40 } });
    await node('generate-invoice').click();
    await page.keyboard.press('Control+c');
    await page.keyboard.press('Control+v');
    await node('generate-invoice-2').waitFor();
    assert.equal(await page.locator('.react-flow__node').count(), 8);
    await page.keyboard.press('Delete');
    await node('generate-invoice-2').waitFor({ state: 'detached' });
    await page.keyboard.press('Control+z');
    await node('generate-invoice-2').waitFor();
    await page.keyboard.press('Control+Shift+z');
    await node('generate-invoice-2').waitFor({ state: 'detached' });
    await page.keyboard.press('Control+z');
    await page.keyboard.press('Control+z');
    await node('generate-invoice-2').waitFor({ state: 'detached' });
    assert.equal(await page.locator('.react-flow__node').count(), 7);
  });

  await step('a dependency added from the keyboard', async () => {
    await fitWholeFlow();
    await node('notify-royalties').click();
    const panel = page.getByRole('complementary', { name: 'Settings of notify-royalties' });
    await panel.getByLabel('Node to wait for').selectOption('generate-invoice');
    await panel.getByLabel('State to wait for').selectOption('failure');
    await panel.getByRole('button', { name: 'Add dependency' }).click();
    await page.getByTestId('edge-generate-invoice-failure-notify-royalties').waitFor();
    // Neither itself nor a node it already waits for is offered.
    const offered = await panel.getByLabel('Node to wait for').locator('option').allInnerTexts();
    for (const id of ['notify-royalties', 'duplicate-shipment-royalties', 'generate-invoice']) assert.ok(!offered.includes(id), `${id} offered: ${offered.join(', ')}`);
    await panel.getByLabel('Trigger').getByText('Any').click();
    await screenshot(page, '10-dependencies-panel');
    // Nor, for is-book, the nodes downstream of it (that would be a cycle).
    await node('is-book').click();
    const downstream = await page.getByRole('complementary', { name: 'Settings of is-book' }).getByLabel('Node to wait for').locator('option').allInnerTexts();
    assert.deepEqual(downstream.slice(1).sort(), ['generate-commission', 'generate-invoice', 'is-physical-product']);
    await page.locator('.react-flow__pane').click({ position: { x: 40, y: 40 } });
    await page.keyboard.press('Control+z');
    await page.keyboard.press('Control+z');
    await page.getByTestId('version-status').filter({ hasText: 'Version 2 · saved' }).waitFor();
  });

  await step('renaming a node keeps its connections', async () => {
    await node('is-book').click();
    const idField = page.getByLabel('Node id');
    await idField.fill('is-a-book');
    await idField.press('Enter');
    await page.getByTestId('edge-generate-shipment-success-is-a-book').waitFor();
    await page.getByTestId('edge-is-a-book-success-duplicate-shipment-royalties').waitFor();
    await idField.fill('is book');
    await idField.press('Enter');
    await page.getByText('Use letters, digits, - and _ only.').waitFor();
    await page.locator('.react-flow__pane').click({ position: { x: 40, y: 40 } });
    await page.keyboard.press('Control+z');
    await node('is-book').waitFor();
    await page.getByTestId('edge-generate-shipment-success-is-book').waitFor();
    await page.getByTestId('version-status').filter({ hasText: 'Version 2 · saved' }).waitFor();
  });

  await step('version history and diff', async () => {
    await page.getByRole('button', { name: 'History' }).click();
    const dialog = page.getByRole('dialog', { name: 'Version history' });
    await dialog.getByRole('list', { name: 'Versions' }).getByText('Version 1', { exact: true }).waitFor();
    // By default: the previous version against the draft.
    await dialog.getByText('1 added').waitFor();
    // The draft is version 2 as saved.
    await dialog.getByLabel('Compare from').selectOption('2');
    await dialog.getByText('No difference').waitFor();
    await dialog.getByLabel('Compare from').selectOption('1');
    await dialog.getByLabel('Compare to').selectOption('2');
    await dialog.getByText('1 added').waitFor();
    await dialog.getByText('2 changed').waitFor();
    await dialog.getByRole('listitem').filter({ hasText: 'generate-invoice' }).waitFor();
    await screenshot(page, '11-version-diff');
  });

  await step('a version opened read-only', async () => {
    await page.getByRole('button', { name: 'Open version 1 read-only' }).click();
    await page.getByText(/Viewing version 1/).waitFor();
    assert.equal(await page.locator('.react-flow__node').count(), 6);
    await node('is-book').click();
    assert.equal(await page.getByLabel('Field of expectation 1').isDisabled(), true);
    await screenshot(page, '12-version-read-only');
    await page.getByRole('button', { name: 'Back to the draft' }).click();
    await node('generate-invoice').waitFor();
  });

  await step('JSON export', async () => {
    await page.getByRole('button', { name: 'JSON', exact: true }).click();
    const dialog = page.getByRole('dialog', { name: 'Import / export JSON' });
    const json = JSON.parse(await dialog.getByLabel('Rule set JSON').inputValue());
    assert.equal(json.company_id, companyId);
    assert.equal(json.rules.length, 7);
    await screenshot(page, '13-json-export');
    await dialog.getByRole('radio', { name: 'Import' }).check();
    await dialog.getByLabel('JSON to import').fill('{"rules": [{"node_type": "condition"}]}');
    await dialog.getByRole('button', { name: 'Replace canvas' }).click();
    await dialog.getByText('This is not a rule set the canvas can read').waitFor();
    await screenshot(page, '14-json-import-refused');
    await dialog.getByRole('button', { name: 'Close' }).click();
  });

  await step('test run', async () => {
    await page.getByRole('button', { name: 'Test run' }).click();
    const dialog = page.getByRole('dialog', { name: 'Test run' });
    await dialog.getByLabel('Payment event JSON').waitFor();
    await screenshot(page, '15-test-run-dialog');
    await dialog.getByRole('button', { name: 'Run test' }).click();
    await page.getByTestId('test-run-banner').waitFor();
    // The sample event is a book: every node of version 2 runs.
    for (const id of ['is-physical-product', 'generate-shipment', 'is-book', 'duplicate-shipment-royalties', 'notify-royalties', 'generate-commission', 'generate-invoice']) {
      assert.equal(await node(id).getAttribute('data-state'), 'success', id);
    }
    await page.getByRole('complementary', { name: 'Test run' }).getByText('Documents it would create').waitFor();
    await page.waitForTimeout(400);
    await screenshot(page, '15-test-run');
    await page.getByRole('button', { name: 'Clear the test run' }).click();
    await page.getByTestId('test-run-banner').waitFor({ state: 'detached' });
  });

  await step('sample event', async () => {
    await page.getByRole('button', { name: 'Sample event' }).click();
    const dialog = page.getByRole('dialog', { name: 'Sample event' });
    await dialog.getByLabel('Sample event JSON').waitFor();
    await screenshot(page, '16-sample-event');
    await dialog.getByRole('button', { name: 'Close' }).click();
  });

  await step('runs: none yet', async () => {
    await page.getByRole('navigation', { name: 'Company sections' }).getByRole('link', { name: 'Runs' }).click();
    await page.getByRole('heading', { name: 'No runs yet' }).waitFor();
    await screenshot(page, '18-runs-empty');
    await page.getByLabel('Status').selectOption('failed');
    await page.getByRole('heading', { name: 'No run matches these filters' }).waitFor();
    await page.getByRole('button', { name: 'Clear filters' }).first().click();
    await page.getByRole('heading', { name: 'No runs yet' }).waitFor();
    await page.getByTestId('live-status').filter({ hasText: 'Live' }).waitFor();
  });

  await step('runs: new payments appear live', async () => {
    const payments = [
      { type: 'product', total: '120.00', currency: 'BRL', product: { id: 'book-1', type: 'book' }, agent_id: 'agent-7' },
      { type: 'product', total: '35.00', currency: 'BRL', product: { id: 'mug-2', type: 'mug' }, agent_id: 'agent-3' },
      { type: 'digital_product', total: '9.90', currency: 'BRL', digital_product: { id: 'ebook-7' } },
      { type: 'service', total: '250.00', currency: 'BRL', service: { id: 'setup' } },
      { type: 'subscription', total: '29.00', currency: 'BRL', subscription: { id: 'sub-1' } },
    ];
    const runIds = [];
    for (const payment of payments) runIds.push((await api('/payment', { method: 'POST', body: { company_id: companyId, ...payment } })).run_id);
    // No reload: the company's event stream brings each run, then its status.
    for (const runId of runIds) await page.locator(`[data-testid="run-row-${runId}"][data-status="succeeded"]`).waitFor();
    assert.equal(await page.locator('.runs-table tbody tr').count(), payments.length);
    // Newest first.
    assert.equal(await page.locator('.runs-table tbody tr').first().getAttribute('data-testid'), `run-row-${runIds.at(-1)}`);
    await page.waitForTimeout(2600);
    await screenshot(page, '19-runs-list');
    await page.getByLabel('Event type').selectOption('service');
    await page.locator(`[data-testid="run-row-${runIds[3]}"]`).waitFor();
    await waitUntil(async () => (await page.locator('.runs-table tbody tr').count()) === 1, 'only the service run is listed');
    await page.getByRole('button', { name: 'Clear filters' }).click();
    await waitUntil(async () => (await page.locator('.runs-table tbody tr').count()) === payments.length, 'every run is listed again');
    await page.getByRole('navigation', { name: 'Company sections' }).getByRole('link', { name: 'Flow' }).click();
    await node('generate-invoice').waitFor();
  });

  await step('a company key goes straight to its flow', async () => {
    const created = await api(`/companies/${companyId}/api-keys`, { method: 'POST', body: { label: 'e2e tour' } });
    const { context, page: keyPage } = await newPage(browser);
    await keyPage.goto(UI_URL);
    await keyPage.getByLabel('Admin token or company API key').fill(created.key);
    await keyPage.getByLabel('Company id').fill(companyId);
    await keyPage.getByRole('button', { name: 'Sign in' }).click();
    await keyPage.getByTestId('node-generate-invoice').waitFor();
    await keyPage.getByText('Company key').waitFor();
    await waitForValidation(keyPage, 'valid');
    await screenshot(keyPage, '17-company-key-editor');
    await context.close();
  });

  assert.deepEqual(errors, [], 'no errors in the browser console');
});
