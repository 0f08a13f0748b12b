/** Dependency edges, coloured and labelled by the state they wait for; and the line drawn while connecting. */
import { memo } from 'react';
import { BaseEdge, EdgeLabelRenderer, getBezierPath, type ConnectionLineComponentProps, type EdgeProps, type EdgeTypes } from '@xyflow/react';
import { IconAlert } from '../components/icons';
import { edgeState, type FlowEdge } from '../model/convert';
import { edgeOutcome } from '../model/runs';
import { useCanvasContext } from './context';

const StateEdge = memo(function StateEdge(props: EdgeProps<FlowEdge>) {
  const { id, sourceX, sourceY, targetX, targetY, sourcePosition, targetPosition, selected, markerEnd, source, target } = props;
  const { problemEdges, results } = useCanvasContext();
  const state = edgeState(props);
  const [path, labelX, labelY] = getBezierPath({ sourceX, sourceY, targetX, targetY, sourcePosition, targetPosition });
  const broken = problemEdges.has(id);
  // Over a simulation or a run: the dependencies followed stand out, the others fade.
  const outcome = results ? edgeOutcome(results, source, state) : undefined;
  const outcomeClass = outcome ? ` outcome-${outcome}` : '';
  return (
    <>
      <BaseEdge
        id={id}
        path={path}
        markerEnd={markerEnd}
        className={`state-edge state-edge-${state}${selected ? ' is-selected' : ''}${broken ? ' has-problems' : ''}${outcomeClass}`}
        interactionWidth={24}
      />
      <EdgeLabelRenderer>
        <div
          className={`edge-label edge-label-${state}${selected ? ' is-selected' : ''}${outcomeClass}`}
          style={{ transform: `translate(-50%, -50%) translate(${labelX}px, ${labelY}px)` }}
          data-testid={`edge-${source}-${state}-${target}`}
          data-outcome={outcome}
          title={outcome === 'taken' ? `${source} ended in ${state}: followed` : outcome === 'not-taken' ? `${source} did not end in ${state}: not followed` : undefined}
        >
          {broken ? <IconAlert size={11} /> : null}
          {state}
        </div>
      </EdgeLabelRenderer>
    </>
  );
});

export const edgeTypes: EdgeTypes = { state: StateEdge };

export function ConnectionLine({ fromX, fromY, toX, toY, fromPosition, toPosition, fromHandle, connectionStatus }: ConnectionLineComponentProps) {
  const [path] = getBezierPath({ sourceX: fromX, sourceY: fromY, sourcePosition: fromPosition, targetX: toX, targetY: toY, targetPosition: toPosition });
  const state = fromHandle.id === 'failure' ? 'failure' : 'success';
  return (
    <g className={`connection-line connection-line-${state}${connectionStatus === 'invalid' ? ' is-invalid' : ''}`}>
      <path d={path} fill="none" />
      <circle cx={toX} cy={toY} r={4} />
    </g>
  );
}
