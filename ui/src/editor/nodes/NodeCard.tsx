/** The chrome every node kind shares on the canvas: card, title, handles, problem badge. */
import { Handle, Position } from '@xyflow/react';
import type { ReactNode } from 'react';
import { IconAlert } from '../../components/icons';
import { describeResult, isRetrying } from '../../model/runs';
import { NodeStateBadge, RetryingBadge } from '../../runs/StateBadge';
import { useCanvasContext } from '../context';

export function NodeCard({
  id,
  kind,
  selected,
  icon,
  subtitle,
  children,
}: {
  id: string;
  kind: 'condition' | 'task';
  selected: boolean;
  icon: ReactNode;
  subtitle: string;
  children?: ReactNode;
}) {
  const { problemsByNode, readOnly, results } = useCanvasContext();
  const problems = problemsByNode.get(id) ?? [];
  const first = problems[0];
  // Over a simulation or a run: the node's state, and one line about its result.
  const result = results?.get(id);
  const state = results ? (result?.state ?? 'pending') : undefined;
  const line = result ? describeResult(result) : undefined;
  const retrying = isRetrying(result);
  return (
    <div
      className={`flow-node flow-node-${kind}${selected ? ' is-selected' : ''}${problems.length > 0 ? ' has-problems' : ''}${state ? ` has-state is-state-${state}` : ''}${retrying ? ' is-retrying' : ''}`}
      data-testid={`node-${id}`}
      data-state={state}
      aria-label={`${kind} ${id}${state ? `, ${retrying ? 'waiting to retry' : state}` : ''}${problems.length > 0 ? `, ${problems.length} problem${problems.length > 1 ? 's' : ''}` : ''}`}
    >
      <Handle type="target" position={Position.Top} className="handle handle-in" isConnectable={!readOnly} aria-label={`input of ${id}`} />
      <div className="flow-node-header">
        <span className={`flow-node-icon flow-node-icon-${kind}`}>{icon}</span>
        <div className="flow-node-titles">
          <span className="flow-node-meta">
            <span className="flow-node-subtitle" title={subtitle}>
              {subtitle}
            </span>
            {retrying ? <RetryingBadge testId={`node-state-${id}`} /> : state ? <NodeStateBadge state={state} testId={`node-state-${id}`} /> : null}
          </span>
          <span className="flow-node-title mono" title={id}>
            {id}
          </span>
        </div>
        {problems.length > 0 ? (
          <span className="flow-node-problems" title={first ? `${first.message}${problems.length > 1 ? ` (+${problems.length - 1} more)` : ''}` : undefined}>
            <IconAlert size={12} />
            {problems.length}
          </span>
        ) : null}
      </div>
      {children ? <div className="flow-node-body">{children}</div> : null}
      {line ? (
        <div className={`flow-node-result tone-${line.tone}`} title={line.text}>
          {result?.step !== undefined ? <span className="flow-node-step">#{result.step}</span> : null}
          <span className="flow-node-result-text">{line.text}</span>
        </div>
      ) : null}
      <div className="flow-node-outputs" aria-hidden="true">
        <span className="out-label out-success">success</span>
        <span className="out-label out-failure">failure</span>
      </div>
      <Handle
        type="source"
        id="success"
        position={Position.Bottom}
        className="handle handle-success"
        style={{ left: '25%' }}
        isConnectable={!readOnly}
        aria-label={`success output of ${id}`}
        title="success: drag to the node that runs when this succeeds"
      />
      <Handle
        type="source"
        id="failure"
        position={Position.Bottom}
        className="handle handle-failure"
        style={{ left: '75%' }}
        isConnectable={!readOnly}
        aria-label={`failure output of ${id}`}
        title="failure: drag to the node that runs when this fails"
      />
    </div>
  );
}

/** `$context.event.product.id` → `event.product.id`, for compact summaries. */
export function shortPath(value: unknown): string {
  if (typeof value === 'string') return value.startsWith('$context.') ? value.slice('$context.'.length) : value;
  return JSON.stringify(value);
}
