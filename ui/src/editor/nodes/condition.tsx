/** The condition node: expectations on `$context` paths, matched all or any; success when they hold. */
import { memo } from 'react';
import type { NodeProps } from '@xyflow/react';
import { IconCondition, IconPlus, IconTrash } from '../../components/icons';
import { PathInput } from '../../components/PathInput';
import { Button, RichText, Segmented } from '../../components/ui';
import type { FlowNode } from '../../model/convert';
import { problemsAt } from '../../model/problems';
import { formatValue } from '../../model/runs';
import { useCanvasContext } from '../context';
import { OPERATOR_LABELS, OPERATORS, operatorArity, type ConditionBody, type Expectation, type Operator } from '../../model/rules';
import { ListValueInput, SingleValueInput } from './fields';
import { NodeCard, shortPath } from './NodeCard';
import type { NodePanelProps, NodeSpec } from './spec';

export type ConditionRule = ConditionBody;

const OPERATOR_SYMBOLS: Record<Operator, string> = {
  eq: '=',
  neq: '≠',
  gt: '>',
  gte: '≥',
  lt: '<',
  lte: '≤',
  in: 'in',
  nin: 'not in',
  contains: 'contains',
  ncontains: 'lacks',
  startswith: 'starts with',
  endswith: 'ends with',
  isnull: 'is null',
  isnotnull: 'is set',
};

function valuesText(expectation: Expectation): string {
  const values = expectation.value ?? [];
  const arity = operatorArity(expectation.operator);
  if (arity === 'none') return '';
  if (arity === 'list') return values.map((value) => shortPath(value)).join(', ');
  return values.length > 0 ? shortPath(values[0]) : '…';
}

/** A one-line reading of an expectation: `event.type = product`. */
export function describeExpectation(expectation: Expectation): string {
  if (expectation.field.trim() === '') return 'choose a field to check…';
  const field = shortPath(expectation.field);
  const values = valuesText(expectation);
  return `${field} ${OPERATOR_SYMBOLS[expectation.operator]}${values ? ` ${values}` : ''}`;
}

function ConditionIcon({ size = 16 }: { size?: number }) {
  return <IconCondition size={size} />;
}

const ConditionRenderer = memo(function ConditionRenderer({ id, data, selected }: NodeProps<FlowNode>) {
  const rule = data.rule as ConditionRule;
  const rows = rule.expect;
  const shown = rows.slice(0, 2);
  // Over a simulation or a run: whether each row held, and what it found.
  const explained = useCanvasContext().results?.get(id)?.explanation?.expectations;
  return (
    <NodeCard id={id} kind="condition" selected={selected} icon={<ConditionIcon />} subtitle={rule.match === 'any' ? 'Condition · any' : 'Condition'}>
      {rows.length === 0 ? (
        <span className="flow-node-muted">No expectation yet</span>
      ) : (
        <>
          {shown.map((row, index) => {
            const outcome = explained?.[index];
            const found = outcome ? `${outcome.held ? 'held' : 'did not hold'}: found ${formatValue(outcome.actual)}${outcome.reason ? ` (${outcome.reason})` : ''}` : undefined;
            return (
              <span className={`flow-node-line mono${outcome ? (outcome.held ? ' is-held' : ' is-not-held') : ''}`} key={index} title={found ? `${describeExpectation(row)} — ${found}` : describeExpectation(row)}>
                {outcome ? (
                  <span className="held-mark" aria-hidden="true">
                    {outcome.held ? '✓' : '✕'}
                  </span>
                ) : null}
                {outcome ? <span className="sr-only">{outcome.held ? 'held: ' : 'did not hold: '}</span> : null}
                {describeExpectation(row)}
              </span>
            );
          })}
          {rows.length > shown.length ? <span className="flow-node-muted">+{rows.length - shown.length} more</span> : null}
        </>
      )}
    </NodeCard>
  );
});

/** The `value` list an operator needs, kept from the old one where it fits. */
function valuesFor(operator: Operator, previous: readonly unknown[] | undefined): unknown[] {
  const values = previous ?? [];
  switch (operatorArity(operator)) {
    case 'none':
      return [];
    case 'one':
      return [values[0] ?? ''];
    case 'list':
      return values.filter((value) => value !== '');
  }
}

function ConditionPanel({ rule, onChange, problems, suggestions, readOnly, nodeId }: NodePanelProps<ConditionRule>) {
  const rows = rule.expect;
  const setRow = (index: number, update: (row: Expectation) => Expectation, key: string) =>
    onChange((current) => ({ ...current, expect: current.expect.map((row, i) => (i === index ? update(row) : row)) }), `${nodeId}:expect[${index}].${key}`);
  const rowsProblems = problemsAt(problems, 'expect').filter((problem) => problem.field === 'expect');

  return (
    <section className="panel-section" aria-label="Expectations">
      <div className="panel-section-header">
        <h3>Expectations</h3>
        <Segmented
          label="Match"
          value={rule.match ?? 'all'}
          disabled={readOnly}
          options={[
            { value: 'all', label: 'All', title: 'Every row must hold' },
            { value: 'any', label: 'Any', title: 'At least one row must hold' },
          ]}
          onChange={(match) => onChange((current) => ({ ...current, match }), `${nodeId}:match`)}
        />
      </div>
      <p className="panel-help">
        The condition ends in <span className="state-text state-success">success</span> when {rule.match === 'any' ? 'any row holds' : 'every row holds'}, else in{' '}
        <span className="state-text state-failure">failure</span>.
      </p>
      {rowsProblems.map((problem) => (
        <p className="field-error" key={problem.key}>
          <RichText text={problem.message} />
        </p>
      ))}
      <ol className="expect-rows">
        {rows.map((row, index) => {
          const rowProblems = problemsAt(problems, `expect[${index}]`);
          const fieldProblems = problemsAt(problems, `expect[${index}].field`);
          const valueProblems = problemsAt(problems, `expect[${index}].value`);
          const operatorProblems = problemsAt(problems, `expect[${index}].operator`);
          const arity = operatorArity(row.operator);
          return (
            <li className={`expect-row${rowProblems.length > 0 ? ' has-problems' : ''}`} key={index} aria-label={`Expectation ${index + 1}`}>
              <div className="expect-row-head">
                <span className="expect-row-index">{index + 1}</span>
                {readOnly ? null : (
                  <Button
                    variant="ghost"
                    size="sm"
                    icon={<IconTrash size={14} />}
                    aria-label={`Remove expectation ${index + 1}`}
                    onClick={() => onChange((current) => ({ ...current, expect: current.expect.filter((_, i) => i !== index) }), `${nodeId}:expect-remove`)}
                  />
                )}
              </div>
              <PathInput
                aria-label={`Field of expectation ${index + 1}`}
                placeholder="$context.event.type"
                value={row.field}
                suggestions={suggestions}
                invalid={fieldProblems.length > 0}
                disabled={readOnly}
                onValueChange={(field) => setRow(index, (current) => ({ ...current, field }), 'field')}
              />
              <select
                className={`input${operatorProblems.length > 0 ? ' is-invalid' : ''}`}
                aria-label={`Operator of expectation ${index + 1}`}
                value={row.operator}
                disabled={readOnly}
                onChange={(event) => {
                  const operator = event.target.value as Operator;
                  setRow(index, (current) => ({ ...current, operator, value: valuesFor(operator, current.value) }), 'operator');
                }}
              >
                {OPERATORS.map((operator) => (
                  <option key={operator} value={operator}>
                    {OPERATOR_LABELS[operator]} ({operator})
                  </option>
                ))}
              </select>
              {arity === 'none' ? (
                <p className="panel-help">No value needed.</p>
              ) : arity === 'list' ? (
                <ListValueInput
                  label={`Values of expectation ${index + 1}`}
                  values={row.value ?? []}
                  disabled={readOnly}
                  invalid={valueProblems.length > 0}
                  onChange={(value) => setRow(index, (current) => ({ ...current, value }), 'value')}
                />
              ) : (
                <SingleValueInput
                  label={`Value of expectation ${index + 1}`}
                  value={row.value?.[0]}
                  disabled={readOnly}
                  invalid={valueProblems.length > 0}
                  onChange={(value) => setRow(index, (current) => ({ ...current, value: [value, ...(current.value ?? []).slice(1)] }), 'value')}
                />
              )}
              {rowProblems.map((problem) => (
                <p className="field-error" key={problem.key}>
                  <RichText text={problem.message} />
                  {problem.hint ? (
                    <span className="field-error-hint">
                      {' '}
                      <RichText text={problem.hint} />
                    </span>
                  ) : null}
                </p>
              ))}
            </li>
          );
        })}
      </ol>
      {readOnly ? null : (
        <Button
          icon={<IconPlus size={14} />}
          size="sm"
          onClick={() => onChange((current) => ({ ...current, expect: [...current.expect, { field: '', operator: 'eq', value: [''] }] }), `${nodeId}:expect-add`)}
        >
          Add expectation
        </Button>
      )}
    </section>
  );
}

export const conditionSpec: NodeSpec<ConditionRule> = {
  kind: 'condition',
  label: () => 'Condition',
  Icon: ConditionIcon,
  defaultRule: () => ({ node_type: 'condition', expect: [{ field: '', operator: 'eq', value: [''] }] }),
  defaultId: () => 'condition',
  Renderer: ConditionRenderer,
  Panel: ConditionPanel,
};
