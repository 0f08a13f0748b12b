/**
 * A node's result in the side panel (from a simulation or a run): its
 * state, attempts and timings, a condition's explanation, a task's resolved
 * parameters, output and error, and the executions a redrive reset; and the
 * documents a run produced.
 */
import { useState } from 'react';
import { z } from 'zod';
import type { RunDocument } from '../api/types';
import { IconChevronDown, IconChevronRight, IconFile } from '../components/icons';
import { Callout, formatTimestamp } from '../components/ui';
import { durationMs, formatDuration } from '../model/format';
import { errorText, formatValue, isRetrying, nodeState, type ConditionExplanation, type NodeResult } from '../model/runs';
import { describeExpectation } from '../editor/nodes/condition';
import { isOperator } from '../model/rules';
import { NodeStateBadge, RetryingBadge, StateIcon } from './StateBadge';

/** A JSON value, pretty-printed. */
export function JsonBlock({ value, label }: { value: unknown; label: string }) {
  return (
    <pre className="json-block" aria-label={label} tabIndex={0}>
      {JSON.stringify(value, null, 2)}
    </pre>
  );
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** An object's fields one per row (nested values as JSON); anything else as JSON. */
export function ValueTable({ value, label }: { value: unknown; label: string }) {
  if (!isRecord(value)) return <JsonBlock value={value} label={label} />;
  const entries = Object.entries(value);
  if (entries.length === 0) return <p className="panel-help">None.</p>;
  return (
    <dl className="kv" aria-label={label}>
      {entries.map(([key, item]) => (
        <div key={key}>
          <dt className="mono">{key}</dt>
          <dd className="mono">{typeof item === 'string' ? item : JSON.stringify(item)}</dd>
        </div>
      ))}
    </dl>
  );
}

function Explanation({ explanation }: { explanation: ConditionExplanation }) {
  return (
    <section className="panel-section" aria-label="Expectations evaluated">
      <div className="panel-section-header">
        <h3>Expectations</h3>
        <span className="panel-section-note">{explanation.match === 'any' ? 'any must hold' : 'all must hold'}</span>
      </div>
      <ol className="explain-list">
        {explanation.expectations.map((expectation, index) => {
          const readable = isOperator(expectation.operator)
            ? describeExpectation({ field: expectation.field, operator: expectation.operator, value: expectation.value })
            : `${expectation.field} ${expectation.operator} ${expectation.value.map((value) => formatValue(value)).join(', ')}`;
          return (
            <li key={index} className={expectation.held ? 'is-held' : 'is-not-held'}>
              <span className={`explain-mark state-badge state-badge-${expectation.held ? 'success' : 'failure'}`}>
                <StateIcon state={expectation.held ? 'success' : 'failure'} size={11} />
                {expectation.held ? 'held' : 'did not hold'}
              </span>
              <span className="explain-rule mono">{readable}</span>
              <span className="explain-actual">
                found <code className="mono inline-code">{formatValue(expectation.actual)}</code>
              </span>
              {expectation.reason ? <span className="explain-reason">{expectation.reason}</span> : null}
            </li>
          );
        })}
      </ol>
    </section>
  );
}

const historyEntrySchema = z.looseObject({
  state: z.string().optional(),
  attempts: z.number().optional(),
  error: z.unknown().optional(),
  started_at: z.string().nullish(),
  finished_at: z.string().nullish(),
});

function History({ history }: { history: unknown[] }) {
  return (
    <section className="panel-section" aria-label="Earlier executions">
      <div className="panel-section-header">
        <h3>Before the redrive</h3>
        <span className="panel-section-note">
          {history.length} earlier execution{history.length === 1 ? '' : 's'}
        </span>
      </div>
      <ol className="history-list">
        {history.map((raw, index) => {
          const entry = historyEntrySchema.safeParse(raw);
          if (!entry.success) return <li key={index}>{JSON.stringify(raw)}</li>;
          const { state, attempts, error, started_at: startedAt, finished_at: finishedAt } = entry.data;
          const took = durationMs(startedAt, finishedAt);
          return (
            <li key={index}>
              <div className="history-head">
                <NodeStateBadge state={nodeState(state)} />
                <span className="muted small">
                  {attempts ?? 0} attempt{attempts === 1 ? '' : 's'}
                  {took !== undefined ? ` · ${formatDuration(took)}` : ''}
                  {finishedAt ? ` · ${formatTimestamp(finishedAt)}` : ''}
                </span>
              </div>
              {errorText(error) ? <p className="history-error">{errorText(error)}</p> : null}
            </li>
          );
        })}
      </ol>
    </section>
  );
}

/** The panel sections about one node's result. */
export function NodeResultDetails({ result, mode }: { result: NodeResult; mode: 'simulation' | 'run' }) {
  const took = durationMs(result.startedAt, result.finishedAt);
  const error = errorText(result.error);
  const retryable = isRecord(result.error) && typeof result.error.retryable === 'boolean' ? result.error.retryable : undefined;
  const isTask = result.nodeType !== 'condition';
  return (
    <>
      <section className="panel-section result-summary" aria-label={mode === 'simulation' ? 'Test run result' : 'Result'}>
        <div className="panel-section-header">
          <h3>{mode === 'simulation' ? 'In the test run' : 'In this run'}</h3>
          {isRetrying(result) ? <RetryingBadge testId="panel-node-state" /> : <NodeStateBadge state={result.state} testId="panel-node-state" />}
        </div>
        <dl className="facts">
          {result.step !== undefined ? (
            <div>
              <dt>Step</dt>
              <dd>#{result.step}</dd>
            </div>
          ) : null}
          {isTask ? (
            <div>
              <dt>Attempts</dt>
              <dd>{result.attempts}</dd>
            </div>
          ) : null}
          {mode === 'run' ? (
            <>
              <div>
                <dt>Started</dt>
                <dd>{result.startedAt ? formatTimestamp(result.startedAt) : '—'}</dd>
              </div>
              <div>
                <dt>Took</dt>
                <dd>{took !== undefined ? formatDuration(took) : '—'}</dd>
              </div>
            </>
          ) : null}
          {result.nextAttemptAt ? (
            <div>
              <dt>Next attempt</dt>
              <dd>{formatTimestamp(result.nextAttemptAt)}</dd>
            </div>
          ) : null}
        </dl>
        {result.state === 'skipped' ? <p className="panel-help">Not run: the dependencies it waits for did not end in the states it needs, so its trigger could no longer hold.</p> : null}
        {result.state === 'pending' && !result.nextAttemptAt ? <p className="panel-help">{mode === 'run' ? 'Not reached yet.' : 'Not evaluated.'}</p> : null}
        {result.note ? <Callout tone="info">{result.note}</Callout> : null}
        {error && result.state !== 'failure' && result.state !== 'success' ? (
          <Callout tone="warning" title={`Attempt ${result.attempts} failed${result.nextAttemptAt ? ': it will be retried' : ''}`}>
            <span className="error-text">{error}</span>
          </Callout>
        ) : error ? (
          <Callout tone="danger" title={retryable === false ? 'Failed permanently' : retryable ? 'Failed (retries exhausted)' : 'Failed'}>
            <span className="error-text">{error}</span>
          </Callout>
        ) : null}
      </section>
      {result.explanation ? <Explanation explanation={result.explanation} /> : null}
      {isTask && result.parameters !== undefined ? (
        <section className="panel-section" aria-label="Resolved parameters">
          <div className="panel-section-header">
            <h3>Resolved parameters</h3>
            <span className="panel-section-note">$context paths replaced</span>
          </div>
          <ValueTable value={result.parameters} label="Resolved parameters" />
        </section>
      ) : null}
      {isTask && result.output !== undefined ? (
        <section className="panel-section" aria-label="Output">
          <h3>Output</h3>
          <ValueTable value={result.output} label="Output" />
        </section>
      ) : null}
      {result.history.length > 0 ? <History history={result.history} /> : null}
    </>
  );
}

/** The documents a run (or a simulation) produced, each expandable to its body. */
export function DocumentList({ documents, onPickNode }: { documents: readonly RunDocument[]; onPickNode?: (nodeId: string) => void }) {
  const [open, setOpen] = useState<number | null>(null);
  if (documents.length === 0) return <p className="panel-help">No documents.</p>;
  return (
    <ul className="document-list" aria-label="Documents">
      {documents.map((document, index) => {
        const expanded = open === index;
        return (
          <li key={document.key ?? `${document.node_id}:${index}`} className={expanded ? 'is-open' : undefined}>
            <button type="button" className="document-row" aria-expanded={expanded} onClick={() => setOpen(expanded ? null : index)}>
              {expanded ? <IconChevronDown size={14} /> : <IconChevronRight size={14} />}
              <span className="document-icon">
                <IconFile size={14} />
              </span>
              <span className="document-kind">{document.kind.replaceAll('_', ' ')}</span>
              <span className="document-node mono">{document.node_id}</span>
            </button>
            {expanded ? (
              <div className="document-body">
                <JsonBlock value={document.body} label={`${document.kind} from ${document.node_id}`} />
                {onPickNode ? (
                  <button type="button" className="link-button" onClick={() => onPickNode(document.node_id)}>
                    Show {document.node_id} on the graph
                  </button>
                ) : null}
              </div>
            ) : null}
          </li>
        );
      })}
    </ul>
  );
}
