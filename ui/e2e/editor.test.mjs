// The canvas as a person uses it: sign in, create a company, build the
// README's flow from an empty canvas with the mouse (palette drags, handle
// drags), see a validation problem, fix it, save version 1, reload; then
// send a payment and watch its run on the canvas, try the flow with a test
// run, and redrive a run that failed.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { api, connect, steps, waitUntil, dragFromPalette, launchBrowser, newPage, screenshot, signIn, UI_URL, uniqueSuffix, waitForRun, waitForValidation, HOOK_RULES } from './lib.mjs';

let browser;
let page;
let errors;
const suffix = uniqueSuffix();
const companyId = `e2e-${suffix}`;

before(async () => {
  browser = await launchBrowser();
  ({ page, errors } = await newPage(browser));
});

after(async () => {
  await browser?.close();
});

/** Fills a `$context` path field and closes its completion list. */
async function fillPath(locator, text) {
  await locator.fill(text);
  await locator.press('Escape');
}

/** Drops a palette item, then renames the new node (the one selected after the drop). */
async function addNode(testId, x, y, nodeId) {
  const nodes = page.locator('.react-flow__node');
  const before = await nodes.count();
  await dragFromPalette(page, testId, x, y);
  await waitUntil(async () => (await nodes.count()) === before + 1, `a node was added for ${testId}`);
  const newId = await page.locator('.react-flow__node.selected').getAttribute('data-id');
  const panel = page.getByRole('complementary', { name: `Settings of ${newId}` });
  const idField = panel.getByLabel('Node id');
  await idField.fill(nodeId);
  await idField.press('Enter');
  await page.getByRole('complementary', { name: `Settings of ${nodeId}` }).waitFor();
}

test('builds, validates, saves and reloads a flow made with the mouse', async (t) => {
  const step = steps(t, page);
  await step('signs in and creates a company', async () => {
    await signIn(page);
    await page.getByRole('heading', { name: 'Companies' }).waitFor();
    await page.getByRole('button', { name: 'New company' }).click();
    await page.getByLabel('Name').fill(`E2E Books ${suffix}`);
    await page.getByLabel('Id', { exact: true }).fill(companyId);
    await page.getByRole('button', { name: 'Create company' }).click();
    await page.getByText('Start this company’s payment flow').waitFor();
    assert.match(await page.getByTestId('version-status').innerText(), /No version yet/);
    await screenshot(page, 'e2e-01-empty-canvas');
  });

  await step('drags the nodes from the palette and fills them in', async () => {
    // A little more room: zoom out once.
    await page.getByRole('button', { name: 'Zoom Out' }).click();

    await addNode('condition', 150, 60, 'is-physical-product');
    await fillPath(page.getByLabel('Field of expectation 1'), '$context.event.type');
    await page.getByLabel('Value of expectation 1').fill('product');

    // Its required product_id is left empty for now.
    await addNode('payment.tasks.generate_shipment', 150, 175, 'generate-shipment');

    await addNode('condition', 150, 290, 'is-book');
    await fillPath(page.getByLabel('Field of expectation 1'), '$context.event.product.type');
    await page.getByLabel('Operator of expectation 1').selectOption('in');
    const values = page.getByLabel('Values of expectation 1');
    await values.fill('book, ebook');
    await values.press('Enter');
    await page.getByRole('button', { name: 'Remove ebook' }).waitFor();

    await addNode('payment.tasks.duplicate_shipment', 150, 405, 'duplicate-shipment-royalties');
    await page.getByLabel('Parameter department').fill('royalties');

    await addNode('payment.tasks.notify', 470, 290, 'notify-royalties');
    await page.getByLabel('Parameter channel').fill('royalties');

    await addNode('payment.tasks.generate_commission', 470, 175, 'generate-commission');
    await fillPath(page.getByLabel('Parameter agent_id'), '$context.event.agent_id');
  });

  await step('connects the nodes by dragging between handles', async () => {
    await connect(page, 'is-physical-product', 'success', 'generate-shipment');
    await connect(page, 'generate-shipment', 'success', 'is-book');
    await connect(page, 'is-book', 'success', 'duplicate-shipment-royalties');
    await connect(page, 'duplicate-shipment-royalties', 'success', 'notify-royalties');
    await connect(page, 'is-physical-product', 'success', 'generate-commission');
    for (const [source, target] of [
      ['is-physical-product', 'generate-shipment'],
      ['generate-shipment', 'is-book'],
      ['is-book', 'duplicate-shipment-royalties'],
      ['duplicate-shipment-royalties', 'notify-royalties'],
      ['is-physical-product', 'generate-commission'],
    ]) {
      await page.getByTestId(`edge-${source}-success-${target}`).waitFor();
    }
  });

  await step('refuses a connection that would make a cycle', async () => {
    await connect(page, 'notify-royalties', 'failure', 'is-physical-product');
    await page.getByText(/would make a cycle/).waitFor();
    assert.equal(await page.getByTestId('edge-notify-royalties-failure-is-physical-product').count(), 0);
  });

  await step('shows the missing required parameter as a problem', async () => {
    await waitForValidation(page, 'invalid');
    const problems = page.getByRole('region', { name: 'Problems' });
    await problems.getByText(/product_id/).first().waitFor();
    assert.equal(await problems.getByRole('listitem').count(), 1, await problems.innerText());
    // The node at fault carries a marker.
    await page.getByTestId('node-generate-shipment').getByText('1', { exact: true }).waitFor();
    await page.getByTestId('node-generate-shipment').click();
    await page.getByLabel('Parameter product_id').waitFor();
    await screenshot(page, 'e2e-02-problem-shown');
  });

  await step('fixes the problem from the problems list', async () => {
    await page.getByRole('region', { name: 'Problems' }).getByRole('button', { name: /generate-shipment/ }).click();
    await fillPath(page.getByLabel('Parameter product_id'), '$context.event.product.id');
    await waitForValidation(page, 'valid');
    assert.equal(await page.getByRole('region', { name: 'Problems' }).count(), 0);
  });

  await step('tidies up and saves version 1', async () => {
    await page.getByRole('button', { name: 'Tidy up the layout' }).click();
    await waitForValidation(page, 'valid');
    await page.getByRole('button', { name: 'Save version' }).click();
    await page.getByText('Saved as version 1').waitFor();
    assert.match(await page.getByTestId('version-status').innerText(), /Version 1 · saved/);
    await page.waitForTimeout(400);
    await screenshot(page, 'e2e-03-saved');

    const saved = await api(`/payment-rules/${companyId}`);
    assert.equal(saved.version, 1);
    const byId = Object.fromEntries(saved.rules.map((node) => [node.node_id, node]));
    assert.deepEqual(Object.keys(byId).sort(), ['duplicate-shipment-royalties', 'generate-commission', 'generate-shipment', 'is-book', 'is-physical-product', 'notify-royalties']);
    assert.deepEqual(byId['is-physical-product'].expect, [{ field: '$context.event.type', operator: 'eq', value: ['product'] }]);
    assert.deepEqual(byId['is-book'].expect, [{ field: '$context.event.product.type', operator: 'in', value: ['book', 'ebook'] }]);
    assert.deepEqual(byId['is-book'].depends_on, [{ node_id: 'generate-shipment', state: 'success' }]);
    assert.deepEqual(byId['generate-shipment'].parameters, { product_id: '$context.event.product.id' });
    assert.deepEqual(byId['duplicate-shipment-royalties'].parameters, { department: 'royalties' });
    assert.deepEqual(byId['notify-royalties'].parameters, { channel: 'royalties' });
    assert.deepEqual(byId['notify-royalties'].depends_on, [{ node_id: 'duplicate-shipment-royalties', state: 'success' }]);
    assert.deepEqual(byId['generate-commission'].parameters, { agent_id: '$context.event.agent_id' });
    assert.deepEqual(byId['generate-commission'].depends_on, [{ node_id: 'is-physical-product', state: 'success' }]);
    for (const node of saved.rules) assert.equal(typeof node.ui?.x, 'number', `${node.node_id} has a saved position`);
  });

  await step('reloads and finds the flow persisted', async () => {
    await page.reload();
    await page.getByTestId('node-notify-royalties').waitFor();
    assert.match(await page.getByTestId('version-status').innerText(), /Version 1 · saved/);
    assert.equal(await page.locator('.react-flow__node').count(), 6);
    assert.equal(await page.locator('.react-flow__edge').count(), 5);
    await waitForValidation(page, 'valid');
    await screenshot(page, 'e2e-04-reloaded');
  });

  let runId;
  await step('a payment runs on the saved version', async () => {
    const accepted = await api('/payment', {
      method: 'POST',
      body: { company_id: companyId, type: 'product', total: '120.00', currency: 'BRL', product: { id: 'book-1', type: 'book' }, agent_id: 'agent-7' },
    });
    runId = accepted.run_id;
    const run = await waitForRun(runId);
    assert.equal(run.status, 'succeeded', JSON.stringify(run));
    assert.equal(run.rule_version, 1);
  });

  await step('opens the run from the runs list and sees every node’s state on the canvas', async () => {
    await page.getByRole('navigation', { name: 'Company sections' }).getByRole('link', { name: 'Runs' }).click();
    await page.getByRole('heading', { name: 'Runs', exact: true }).waitFor();
    const row = page.getByTestId(`run-row-${runId}`);
    await row.waitFor();
    assert.equal(await row.getAttribute('data-status'), 'succeeded');
    await page.getByTestId('live-status').filter({ hasText: 'Live' }).waitFor();
    await screenshot(page, 'e2e-05-runs-list');

    await row.getByRole('link', { name: new RegExp(runId) }).click();
    await page.getByRole('main', { name: 'Run graph' }).waitFor();
    // The book case: every node ran and succeeded.
    const expected = {
      'is-physical-product': 'success',
      'generate-shipment': 'success',
      'is-book': 'success',
      'duplicate-shipment-royalties': 'success',
      'notify-royalties': 'success',
      'generate-commission': 'success',
    };
    for (const [nodeId, state] of Object.entries(expected)) {
      await page.locator(`[data-testid="node-${nodeId}"][data-state="${state}"]`).waitFor();
      assert.equal(await page.getByTestId(`node-state-${nodeId}`).innerText(), state);
    }
    assert.equal(await page.getByTestId('edge-is-book-success-duplicate-shipment-royalties').getAttribute('data-outcome'), 'taken');
    const overview = page.getByRole('complementary', { name: 'Run overview' });
    await overview.getByText('Packing slip copy', { exact: false }).waitFor();

    // A node's details: its resolved parameters and output.
    await page.getByTestId('node-generate-shipment').click();
    const panel = page.getByRole('complementary', { name: 'Result of generate-shipment' });
    await panel.getByRole('definition').filter({ hasText: 'book-1' }).first().waitFor();
    await panel.getByText('shipment_id').waitFor();
    assert.equal(await panel.getByTestId('panel-node-state').innerText(), 'success');
    await page.waitForTimeout(400);
    await screenshot(page, 'e2e-06-run-succeeded');
  });

  await step('a test run in the editor shows the path on the canvas', async () => {
    await page.getByRole('navigation', { name: 'Company sections' }).getByRole('link', { name: 'Flow' }).click();
    await page.getByTestId('node-is-book').waitFor();
    await page.getByRole('button', { name: 'Test run' }).click();
    const dialog = page.getByRole('dialog', { name: 'Test run' });
    // Not a book: the royalties branch is not taken.
    await dialog.getByLabel('Payment event JSON').fill(
      JSON.stringify({ company_id: companyId, type: 'product', total: '80.00', currency: 'BRL', product: { id: 'mug-1', type: 'mug' }, agent_id: 'agent-7' }, null, 2),
    );
    await dialog.getByRole('button', { name: 'Run test' }).click();
    await page.getByTestId('test-run-banner').waitFor();
    const expected = {
      'is-physical-product': 'success',
      'generate-shipment': 'success',
      'is-book': 'failure',
      'duplicate-shipment-royalties': 'skipped',
      'notify-royalties': 'skipped',
      'generate-commission': 'success',
    };
    for (const [nodeId, state] of Object.entries(expected)) {
      assert.equal(await page.getByTestId(`node-${nodeId}`).getAttribute('data-state'), state, nodeId);
    }
    const path = page.getByRole('complementary', { name: 'Test run' }).getByRole('region', { name: 'Path' });
    assert.deepEqual(
      (await path.locator('.path-row:not(.is-not-run) .path-node').allInnerTexts()).sort(),
      ['generate-commission', 'generate-shipment', 'is-book', 'is-physical-product'],
    );
    // The condition says what it found.
    await page.getByTestId('node-is-book').click();
    const explained = page.getByRole('region', { name: 'Expectations evaluated' });
    await explained.getByText('did not hold').waitFor();
    await explained.getByText('"mug"').waitFor();
    await page.waitForTimeout(300);
    await screenshot(page, 'e2e-07-test-run');

    // Editing the flow clears the test run.
    await page.getByLabel('Operator of expectation 1').selectOption('nin');
    await page.getByTestId('test-run-banner').waitFor({ state: 'detached' });
    assert.equal(await page.getByTestId('node-is-book').getAttribute('data-state'), null);
    await page.locator('.react-flow__pane').click({ position: { x: 40, y: 40 } });
    await page.keyboard.press('Control+z');
    await page.getByTestId('version-status').filter({ hasText: 'Version 1 · saved' }).waitFor();
  });

  await step('a failed run shows where it failed, and is redriven', async () => {
    // A flow whose webhook call is refused (loopback addresses are not called): the run fails.
    const hooksId = `e2e-hooks-${suffix}`;
    await api('/companies', { method: 'POST', body: { name: `E2E Hooks ${suffix}`, id: hooksId } });
    await api('/payment-rules/', { method: 'POST', body: { company_id: hooksId, rules: HOOK_RULES } });
    const accepted = await api('/payment', { method: 'POST', body: { company_id: hooksId, type: 'product', total: '50.00', currency: 'BRL' } });
    assert.equal((await waitForRun(accepted.run_id)).status, 'failed');

    await page.goto(`${UI_URL}#/companies/${hooksId}/runs`);
    await page.getByLabel('Status').selectOption('failed');
    const row = page.getByTestId(`run-row-${accepted.run_id}`);
    await row.waitFor();
    await row.getByRole('link').click();
    await page.locator('[data-testid="node-call-erp"][data-state="failure"]').waitFor();
    assert.equal(await page.getByTestId('node-is-product').getAttribute('data-state'), 'success');
    assert.equal(await page.getByTestId('node-notify-finance').getAttribute('data-state'), 'skipped');
    await page.getByTestId('node-call-erp').click();
    await page.getByRole('complementary', { name: 'Result of call-erp' }).getByText(/private or loopback address/).waitFor();
    await page.waitForTimeout(300);
    await screenshot(page, 'e2e-08-run-failed');

    await page.getByRole('button', { name: 'Redrive', exact: true }).click();
    const confirm = page.getByRole('dialog', { name: 'Redrive this run?' });
    await confirm.getByText('call-erp').waitFor();
    await confirm.getByRole('button', { name: 'Redrive run' }).click();
    await page.getByText('Redriven: the failed tasks run again').waitFor();
    // It fails again the same way; the first execution is kept in the node's history.
    await page.getByRole('region', { name: 'Earlier executions' }).waitFor();
    await page.locator('[data-testid="node-call-erp"][data-state="failure"]').waitFor();
    const run = await waitForRun(accepted.run_id);
    assert.equal(run.status, 'failed');
    assert.equal(run.nodes.find((node) => node.node_id === 'call-erp').history.length, 1);
  });

  assert.deepEqual(
    errors.filter((error) => !error.includes('favicon')),
    [],
    'no errors in the browser console',
  );
});
