/**
 * The test run: edit or paste a payment event, then run the draft against it
 * in the server's evaluator (`POST /payment-rules/{company_id}/simulate`),
 * with no side effects. The result is drawn on the canvas by the editor; this
 * dialog says what went wrong when there is no result (the event or the
 * draft refused, a server without simulation).
 */
import { useState } from 'react';
import { ApiError, errorMessage, NotAvailableError, type MoneyFlowClient } from '../api/client';
import type { Simulation } from '../api/types';
import { IconPlay } from '../components/icons';
import { Button, Callout, Dialog, Kbd, RichText } from '../components/ui';
import type { FieldProblem } from '../model/problems';
import type { RuleNode } from '../model/rules';
import { DEFAULT_SAMPLE_EVENT } from './SampleEventDialog';

type Failure = { kind: 'json'; message: string } | { kind: 'problems'; problems: FieldProblem[] } | { kind: 'unavailable'; endpoint: string } | { kind: 'error'; message: string };

export function SimulateDialog({
  open,
  onClose,
  client,
  companyId,
  rules,
  event,
  onResult,
}: {
  open: boolean;
  onClose: () => void;
  client: MoneyFlowClient;
  companyId: string;
  rules: RuleNode[];
  event: Record<string, unknown>;
  /** The simulation of `rules` against the event as run (kept as the sample event). */
  onResult: (simulation: Simulation, event: Record<string, unknown>) => void;
}) {
  const [text, setText] = useState(() => JSON.stringify(event, null, 2));
  const [failure, setFailure] = useState<Failure | null>(null);
  const [running, setRunning] = useState(false);

  const run = async () => {
    if (running) return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (reason) {
      setFailure({ kind: 'json', message: errorMessage(reason) });
      return;
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
      setFailure({ kind: 'json', message: 'The event must be a JSON object, like the body of POST /payment.' });
      return;
    }
    const payment = parsed as Record<string, unknown>;
    setRunning(true);
    setFailure(null);
    try {
      const simulation = await client.simulate(companyId, { rules, event: payment });
      onResult(simulation, payment);
    } catch (error) {
      if (error instanceof NotAvailableError) setFailure({ kind: 'unavailable', endpoint: error.endpoint });
      else if (error instanceof ApiError && error.fieldProblems.length > 0) setFailure({ kind: 'problems', problems: error.fieldProblems });
      else setFailure({ kind: 'error', message: errorMessage(error) });
    } finally {
      setRunning(false);
    }
  };

  return (
    <Dialog
      open={open}
      onClose={onClose}
      title="Test run"
      size="lg"
      description="Runs the draft against this payment event in the server’s evaluator. Nothing is stored and no document is created; http_request tasks are not called."
      footer={
        <>
          <Button
            variant="ghost"
            className="footer-start"
            onClick={() => {
              setText(JSON.stringify({ company_id: companyId, ...DEFAULT_SAMPLE_EVENT }, null, 2));
              setFailure(null);
            }}
          >
            Reset to the example
          </Button>
          <Button onClick={onClose}>Cancel</Button>
          <Button variant="primary" icon={<IconPlay size={14} />} busy={running} disabled={running || rules.length === 0} onClick={() => void run()} title="Run the test (Ctrl+Enter)">
            Run test
          </Button>
        </>
      }
    >
      <div className="field">
        <div className="field-label-row">
          <label className="field-label" htmlFor="test-run-event">
            Payment event
          </label>
          <span className="field-hint">
            <Kbd>Ctrl</Kbd>
            <Kbd>Enter</Kbd> runs the test
          </span>
        </div>
        <textarea
          id="test-run-event"
          className={`input code-area${failure?.kind === 'json' ? ' is-invalid' : ''}`}
          aria-label="Payment event JSON"
          rows={16}
          spellCheck={false}
          value={text}
          onChange={(change) => setText(change.target.value)}
          onKeyDown={(key) => {
            if (key.key === 'Enter' && (key.ctrlKey || key.metaKey)) {
              key.preventDefault();
              void run();
            }
          }}
        />
        <p className="field-hint">The event is kept as this company’s sample event, whose fields are offered when you type $context.event… in a node.</p>
      </div>
      {failure?.kind === 'json' ? (
        <Callout tone="danger" title="Not a valid event">
          {failure.message}
        </Callout>
      ) : failure?.kind === 'problems' ? (
        <Callout tone="danger" title={`The server refused the test run: ${failure.problems.length} problem${failure.problems.length === 1 ? '' : 's'}`}>
          <ul className="plain-list test-run-problems">
            {failure.problems.map((problem, index) => (
              <li key={index}>
                <code className="mono inline-code">{problem.path || 'body'}</code> <RichText text={problem.message} />
              </li>
            ))}
          </ul>
          <p className="small">Problems under “event” are in the event above; the others are in the flow (see the problems list under the canvas).</p>
        </Callout>
      ) : failure?.kind === 'unavailable' ? (
        <Callout tone="info" title="Not available on this server yet">
          {failure.endpoint} is not on this MoneyFlow server. Update the server to test flows here; until then, the editor still validates every change.
        </Callout>
      ) : failure?.kind === 'error' ? (
        <Callout tone="danger" title="The test run failed">
          {failure.message}
        </Callout>
      ) : null}
    </Dialog>
  );
}
