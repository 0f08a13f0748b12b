/** What node renderers read besides their own data: problems, the catalogue, read-only mode. */
import { createContext, useContext } from 'react';
import type { TaskSpec } from '../model/catalogue';
import type { LocatedProblem } from '../model/problems';

export interface CanvasContextValue {
  problemsByNode: ReadonlyMap<string, LocatedProblem[]>;
  problemEdges: ReadonlySet<string>;
  tasks: ReadonlyMap<string, TaskSpec>;
  readOnly: boolean;
}

export const CanvasContext = createContext<CanvasContextValue>({
  problemsByNode: new Map(),
  problemEdges: new Set(),
  tasks: new Map(),
  readOnly: false,
});

export function useCanvasContext(): CanvasContextValue {
  return useContext(CanvasContext);
}
