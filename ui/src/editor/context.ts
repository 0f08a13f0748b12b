/** What node renderers read besides their own data: problems, the catalogue, read-only mode, a run's results. */
import { createContext, useContext } from 'react';
import type { TaskSpec } from '../model/catalogue';
import type { LocatedProblem } from '../model/problems';
import type { NodeResults } from '../model/runs';

export interface CanvasContextValue {
  problemsByNode: ReadonlyMap<string, LocatedProblem[]>;
  problemEdges: ReadonlySet<string>;
  tasks: ReadonlyMap<string, TaskSpec>;
  readOnly: boolean;
  /** What a simulation or a run did, node by node: drawn over the graph when set. */
  results: NodeResults | null;
}

export const CanvasContext = createContext<CanvasContextValue>({
  problemsByNode: new Map(),
  problemEdges: new Set(),
  tasks: new Map(),
  readOnly: false,
  results: null,
});

export function useCanvasContext(): CanvasContextValue {
  return useContext(CanvasContext);
}
