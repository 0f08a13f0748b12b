/**
 * Validation problems (`POST /payment-rules/validate`, or a save's 422)
 * located on the canvas: `rules[i]…` names a node, `rules[i].depends_on[j]…`
 * an edge, and the rest of the path the field inside the node.
 */
import { z } from 'zod';
import type { RulesIndex } from './convert';

export const fieldProblemSchema = z.looseObject({
  path: z.string(),
  code: z.string(),
  message: z.string(),
  hint: z.string().nullish(),
  allowed: z.array(z.string()).nullish(),
});
export type FieldProblem = z.infer<typeof fieldProblemSchema>;

export interface LocatedProblem extends FieldProblem {
  /** Stable within one validation: for React keys. */
  key: string;
  nodeId?: string;
  edgeId?: string;
  /** The path inside the node: `parameters.product_id`, `expect[0].value`, `depends_on[1]`. */
  field: string;
}

const RULE_PATH = /^rules\[(\d+)\](?:\.(.*))?$/;
const DEPENDENCY_FIELD = /^depends_on\[(\d+)\]/;

export function locateProblems(problems: readonly FieldProblem[], index: RulesIndex): LocatedProblem[] {
  return problems.map((problem, i) => {
    const located: LocatedProblem = { ...problem, key: `${i}:${problem.path}:${problem.code}`, field: '' };
    const match = RULE_PATH.exec(problem.path);
    if (!match) return located;
    const ruleIndex = Number(match[1]);
    const field = match[2] ?? '';
    located.field = field;
    located.nodeId = index.nodeAt[ruleIndex];
    const dependency = DEPENDENCY_FIELD.exec(field);
    if (dependency) located.edgeId = index.edgeAt[ruleIndex]?.[Number(dependency[1])];
    return located;
  });
}

/** Problems grouped by node id (those that name no node are under `''`). */
export function problemsByNode(problems: readonly LocatedProblem[]): Map<string, LocatedProblem[]> {
  const byNode = new Map<string, LocatedProblem[]>();
  for (const problem of problems) {
    const key = problem.nodeId ?? '';
    const list = byNode.get(key);
    if (list) list.push(problem);
    else byNode.set(key, [problem]);
  }
  return byNode;
}

/** The problems about one field of a node: `parameters.product_id`, or `expect[0]` (and below). */
export function problemsAt(problems: readonly LocatedProblem[] | undefined, fieldPrefix: string): LocatedProblem[] {
  if (!problems) return [];
  return problems.filter(
    (problem) => problem.field === fieldPrefix || problem.field.startsWith(`${fieldPrefix}.`) || problem.field.startsWith(`${fieldPrefix}[`),
  );
}
