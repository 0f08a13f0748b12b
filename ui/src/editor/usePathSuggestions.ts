/** `$context` completion for the selected node: the sample event, the company, the run, and its ancestors' outputs. */
import { useMemo } from 'react';
import type { TaskSpec } from '../model/catalogue';
import type { FlowEdge, FlowNode } from '../model/convert';
import { ancestors } from '../model/graph';
import { COMPANY_PATHS, eventPaths, RUN_PATHS, upstreamPaths, type PathSuggestion } from '../model/paths';

export function usePathSuggestions(
  sampleEvent: unknown,
  selectedId: string | undefined,
  nodes: readonly FlowNode[],
  edges: readonly FlowEdge[],
  tasks: ReadonlyMap<string, TaskSpec>,
): PathSuggestion[] {
  const base = useMemo(() => [...eventPaths(sampleEvent), ...COMPANY_PATHS, ...RUN_PATHS], [sampleEvent]);
  return useMemo(() => {
    if (!selectedId) return base;
    const upstream = ancestors(edges, selectedId);
    const upstreamNodes = nodes
      .filter((node) => upstream.has(node.id))
      .map((node) => ({ id: node.id, taskName: node.data.rule.node_type === 'task' ? node.data.rule.task_name : undefined }));
    return [...base, ...upstreamPaths(upstreamNodes, tasks)];
  }, [base, selectedId, nodes, edges, tasks]);
}
