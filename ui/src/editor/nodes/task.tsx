/** The task node: a catalogue task with parameters (literals or `$context` paths), retry and timeout. */
import { memo, useState } from 'react';
import type { NodeProps } from '@xyflow/react';
import { IconBox, IconGlobe, IconKey, IconPlus, IconReceipt, IconSend, IconStop, IconTrash, IconTruck } from '../../components/icons';
import { PathInput } from '../../components/PathInput';
import { Button, Field, RichText } from '../../components/ui';
import {
  acceptsExtraParameters,
  baseNodeId,
  parameterSpecs,
  parameterText,
  parseParameterText,
  taskGroup,
  taskTitle,
  type TaskSpec,
} from '../../model/catalogue';
import type { FlowNode } from '../../model/convert';
import { problemsAt } from '../../model/problems';
import { formatValue } from '../../model/runs';
import type { Retry, TaskBody } from '../../model/rules';
import { useCanvasContext } from '../context';
import { NodeCard, shortPath } from './NodeCard';
import type { NodePanelProps, NodeSpec } from './spec';

export type TaskRule = TaskBody;

export function TaskIcon({ size = 16, name }: { size?: number; name: string }) {
  if (name.endsWith('.http_request')) return <IconGlobe size={size} />;
  switch (taskGroup(name)) {
    case 'Shipping':
      return <IconTruck size={size} />;
    case 'Billing & payouts':
      return <IconReceipt size={size} />;
    case 'Subscriptions & access':
      return <IconKey size={size} />;
    case 'Messages & integrations':
      return <IconSend size={size} />;
    case 'Flow control':
      return <IconStop size={size} />;
    default:
      return <IconBox size={size} />;
  }
}

const TaskRenderer = memo(function TaskRenderer({ id, data, selected }: NodeProps<FlowNode>) {
  const { tasks, results } = useCanvasContext();
  const rule = data.rule as TaskRule;
  const task = tasks.get(rule.task_name);
  const parameters = Object.entries(rule.parameters ?? {});
  const shown = parameters.slice(0, 2);
  // Over a simulation or a run: a `$context` path shows the value it resolved to.
  const resolved = results?.get(id)?.parameters;
  const resolvedValues = resolved !== null && typeof resolved === 'object' && !Array.isArray(resolved) ? (resolved as Record<string, unknown>) : undefined;
  return (
    <NodeCard id={id} kind="task" selected={selected} icon={<TaskIcon name={rule.task_name} />} subtitle={taskTitle(task, rule.task_name)}>
      {parameters.length === 0 ? (
        <span className="flow-node-muted">No parameters</span>
      ) : (
        <>
          {shown.map(([key, value]) => {
            const isPath = typeof value === 'string' && value.startsWith('$context.');
            const actual = isPath && resolvedValues && key in resolvedValues ? resolvedValues[key] : undefined;
            return (
              <span className="flow-node-line mono" key={key} title={`${key}: ${parameterText(value)}${actual !== undefined ? ` → ${formatValue(actual)}` : ''}`}>
                <span className="flow-node-key">{key}</span> {actual !== undefined ? <span className="resolved-value">{formatValue(actual)}</span> : shortPath(value)}
              </span>
            );
          })}
          {parameters.length > shown.length ? <span className="flow-node-muted">+{parameters.length - shown.length} more</span> : null}
        </>
      )}
    </NodeCard>
  );
});

/** Sets one parameter (undefined removes it), keeping the others in their order. */
function setParameter(rule: TaskRule, name: string, value: unknown): TaskRule {
  const parameters = Object.entries(rule.parameters ?? {}).filter(([key]) => key !== name || value !== undefined);
  const next = Object.fromEntries(parameters.map(([key, current]) => [key, key === name ? value : current]));
  if (value !== undefined && !(name in next)) next[name] = value;
  return { ...rule, parameters: next };
}

function numberOrUndefined(text: string): number | undefined {
  if (text.trim() === '') return undefined;
  const number = Number(text);
  return Number.isFinite(number) ? Math.trunc(number) : undefined;
}

function withRetry(rule: TaskRule, field: keyof Retry, text: string): TaskRule {
  const value = numberOrUndefined(text);
  const retry: Retry = Object.fromEntries(Object.entries({ ...(rule.retry ?? {}), [field]: value }).filter(([, current]) => current !== undefined));
  const next: TaskRule = { ...rule, retry };
  if (Object.keys(retry).length === 0) delete next.retry;
  return next;
}

function TaskPanel({ nodeId, rule, onChange, problems, suggestions, tasks, readOnly }: NodePanelProps<TaskRule>) {
  const task = tasks.get(rule.task_name);
  const specs = parameterSpecs(task);
  const known = new Set(specs.map((spec) => spec.name));
  const parameters = rule.parameters ?? {};
  const extra = Object.keys(parameters).filter((name) => !known.has(name));
  const [newKey, setNewKey] = useState('');
  const taskProblems = problemsAt(problems, 'task_name');
  const parameterProblems = problems.filter((problem) => problem.field === 'parameters');
  const retryProblems = problemsAt(problems, 'retry');
  const timeoutProblems = problemsAt(problems, 'timeout_ms');
  const retry = rule.retry ?? {};

  return (
    <>
      <section className="panel-section" aria-label="Task">
        <div className="panel-section-header">
          <h3>Task</h3>
        </div>
        <Field label="Catalogue task" htmlFor={`${nodeId}-task-name`} error={taskProblems.length > 0 ? <RichText text={taskProblems.map((problem) => problem.message).join(' ')} /> : undefined}>
          <select
            id={`${nodeId}-task-name`}
            className="input"
            value={rule.task_name}
            disabled={readOnly}
            onChange={(event) => onChange((current) => ({ ...current, task_name: event.target.value }), `${nodeId}:task_name`)}
          >
            {task ? null : <option value={rule.task_name}>{rule.task_name} (unknown)</option>}
            {[...tasks.values()].map((option) => (
              <option key={option.name} value={option.name}>
                {taskTitle(option, option.name)}
              </option>
            ))}
          </select>
        </Field>
        <p className="panel-help">
          <code className="mono">{rule.task_name}</code>
          {task?.description ? ` — ${task.description}` : null}
        </p>
      </section>

      <section className="panel-section" aria-label="Parameters">
        <div className="panel-section-header">
          <h3>Parameters</h3>
          <span className="panel-section-note">a value, or a $context path</span>
        </div>
        {parameterProblems.map((problem) => (
          <p className="field-error" key={problem.key}>
            <RichText text={problem.message} />
          </p>
        ))}
        {specs.length === 0 && extra.length === 0 ? <p className="panel-help">This task takes no parameters.</p> : null}
        {specs.map((spec) => {
          const fieldProblems = problemsAt(problems, `parameters.${spec.name}`);
          const id = `${nodeId}-param-${spec.name}`;
          return (
            <Field
              key={spec.name}
              label={<span className="mono">{spec.name}</span>}
              htmlFor={id}
              required={spec.required}
              aside={<span className="type-hint">{spec.hint}</span>}
              hint={spec.description}
              error={fieldProblems.length > 0 ? <RichText text={fieldProblems.map((problem) => problem.message).join(' ')} /> : undefined}
            >
              <PathInput
                id={id}
                aria-label={`Parameter ${spec.name}`}
                aria-required={spec.required}
                placeholder={spec.required ? 'required' : 'optional'}
                value={parameterText(parameters[spec.name])}
                suggestions={suggestions}
                extraOptions={spec.enumValues}
                invalid={fieldProblems.length > 0}
                disabled={readOnly}
                onValueChange={(text) => onChange((current) => setParameter(current, spec.name, parseParameterText(text, spec.kind)), `${nodeId}:param:${spec.name}`)}
              />
            </Field>
          );
        })}
        {extra.map((name) => {
          const fieldProblems = problemsAt(problems, `parameters.${name}`);
          return (
            <Field
              key={name}
              label={<span className="mono">{name}</span>}
              htmlFor={`${nodeId}-extra-${name}`}
              aside={
                readOnly ? undefined : (
                  <Button
                    variant="ghost"
                    size="sm"
                    icon={<IconTrash size={14} />}
                    aria-label={`Remove parameter ${name}`}
                    onClick={() => onChange((current) => setParameter(current, name, undefined), `${nodeId}:param-remove`)}
                  />
                )
              }
              hint={known.size > 0 && !acceptsExtraParameters(task) ? 'Not a parameter of this task.' : 'An extra field, kept as given.'}
              error={
                fieldProblems.length > 0 ? <RichText text={fieldProblems.map((problem) => `${problem.message}${problem.allowed?.length ? ` (known: ${problem.allowed.join(', ')})` : ''}`).join(' ')} /> : undefined
              }
            >
              <PathInput
                id={`${nodeId}-extra-${name}`}
                aria-label={`Parameter ${name}`}
                value={parameterText(parameters[name])}
                suggestions={suggestions}
                invalid={fieldProblems.length > 0}
                disabled={readOnly}
                onValueChange={(text) => onChange((current) => setParameter(current, name, parseParameterText(text, 'json') ?? ''), `${nodeId}:param:${name}`)}
              />
            </Field>
          );
        })}
        {readOnly || !acceptsExtraParameters(task) ? null : (
          <form
            className="inline-form"
            onSubmit={(event) => {
              event.preventDefault();
              const key = newKey.trim();
              if (!key || key in parameters) return;
              onChange((current) => setParameter(current, key, ''), `${nodeId}:param-add`);
              setNewKey('');
            }}
          >
            <input className="input mono" aria-label="New parameter name" placeholder="another field" value={newKey} onChange={(event) => setNewKey(event.target.value)} />
            <Button type="submit" size="sm" icon={<IconPlus size={14} />} disabled={!newKey.trim() || newKey.trim() in parameters}>
              Add
            </Button>
          </form>
        )}
      </section>

      <section className="panel-section" aria-label="Retries and timeout">
        <div className="panel-section-header">
          <h3>Retries &amp; timeout</h3>
          <span className="panel-section-note">empty: server default</span>
        </div>
        <div className="grid-2">
          <Field label="Max attempts" htmlFor={`${nodeId}-max-attempts`}>
            <input
              id={`${nodeId}-max-attempts`}
              className="input"
              type="number"
              min={1}
              inputMode="numeric"
              placeholder="default"
              value={retry.max_attempts ?? ''}
              disabled={readOnly}
              onChange={(event) => onChange((current) => withRetry(current, 'max_attempts', event.target.value), `${nodeId}:retry.max_attempts`)}
            />
          </Field>
          <Field label="Timeout (ms)" htmlFor={`${nodeId}-timeout`}>
            <input
              id={`${nodeId}-timeout`}
              className="input"
              type="number"
              min={1}
              inputMode="numeric"
              placeholder="default"
              value={rule.timeout_ms ?? ''}
              disabled={readOnly}
              onChange={(event) =>
                onChange((current) => {
                  const value = numberOrUndefined(event.target.value);
                  const next = { ...current, timeout_ms: value };
                  if (value === undefined) delete next.timeout_ms;
                  return next;
                }, `${nodeId}:timeout_ms`)
              }
            />
          </Field>
          <Field label="First backoff (ms)" htmlFor={`${nodeId}-initial-backoff`}>
            <input
              id={`${nodeId}-initial-backoff`}
              className="input"
              type="number"
              min={0}
              inputMode="numeric"
              placeholder="default"
              value={retry.initial_backoff_ms ?? ''}
              disabled={readOnly}
              onChange={(event) => onChange((current) => withRetry(current, 'initial_backoff_ms', event.target.value), `${nodeId}:retry.initial_backoff_ms`)}
            />
          </Field>
          <Field label="Max backoff (ms)" htmlFor={`${nodeId}-max-backoff`}>
            <input
              id={`${nodeId}-max-backoff`}
              className="input"
              type="number"
              min={0}
              inputMode="numeric"
              placeholder="default"
              value={retry.max_backoff_ms ?? ''}
              disabled={readOnly}
              onChange={(event) => onChange((current) => withRetry(current, 'max_backoff_ms', event.target.value), `${nodeId}:retry.max_backoff_ms`)}
            />
          </Field>
        </div>
        {[...retryProblems, ...timeoutProblems].map((problem) => (
          <p className="field-error" key={problem.key}>
            <RichText text={problem.message} />
          </p>
        ))}
      </section>
    </>
  );
}

function TaskSpecIcon({ size = 16, rule }: { size?: number; rule?: TaskRule }) {
  return <TaskIcon size={size} name={rule?.task_name ?? ''} />;
}

export const taskSpec: NodeSpec<TaskRule> = {
  kind: 'task',
  label: (rule, tasks: ReadonlyMap<string, TaskSpec>) => taskTitle(tasks.get(rule.task_name), rule.task_name),
  Icon: TaskSpecIcon,
  defaultRule: (taskName = 'payment.tasks.notify') => ({ node_type: 'task', task_name: taskName, parameters: {} }),
  defaultId: (taskName = 'task') => baseNodeId(taskName),
  Renderer: TaskRenderer,
  Panel: TaskPanel,
};
