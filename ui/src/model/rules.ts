/**
 * The saved rule model (DESIGN §2), typed and validated with zod.
 *
 * This is the JSON the API stores, independent of React Flow: the canvas
 * converts it to nodes and edges in `convert.ts` and back. Every object is a
 * `looseObject`, so fields this version of the canvas does not know are kept
 * as they are (the server decides whether they are valid).
 *
 * The schema checks structure (what the canvas needs to draw and edit a rule
 * set); the meaning (unknown tasks, dangling dependencies, cycles, parameter
 * schemas…) is the server's `POST /payment-rules/validate`.
 */
import { z } from 'zod';

/** Letters, digits, `-` and `_`: the rule for node ids (and company ids). */
export const NODE_ID_PATTERN = /^[A-Za-z0-9_-]+$/;

export const STATES = ['success', 'failure'] as const;
export type DependencyState = (typeof STATES)[number];

export const TRIGGERS = ['all', 'any'] as const;
export type Trigger = (typeof TRIGGERS)[number];

export const MATCHES = ['all', 'any'] as const;
export type Match = (typeof MATCHES)[number];

/** The 14 operators of a condition's expectation. */
export const OPERATORS = [
  'eq',
  'neq',
  'gt',
  'gte',
  'lt',
  'lte',
  'in',
  'nin',
  'contains',
  'ncontains',
  'startswith',
  'endswith',
  'isnull',
  'isnotnull',
] as const;
export type Operator = (typeof OPERATORS)[number];

export function isOperator(value: string): value is Operator {
  return (OPERATORS as readonly string[]).includes(value);
}

/** How many values an operator reads from `value`. */
export type Arity = 'one' | 'list' | 'none';

export function operatorArity(operator: Operator): Arity {
  switch (operator) {
    case 'in':
    case 'nin':
      return 'list';
    case 'isnull':
    case 'isnotnull':
      return 'none';
    default:
      return 'one';
  }
}

export const OPERATOR_LABELS: Record<Operator, string> = {
  eq: 'equals',
  neq: 'does not equal',
  gt: 'is greater than',
  gte: 'is at least',
  lt: 'is less than',
  lte: 'is at most',
  in: 'is one of',
  nin: 'is none of',
  contains: 'contains',
  ncontains: 'does not contain',
  startswith: 'starts with',
  endswith: 'ends with',
  isnull: 'is null',
  isnotnull: 'is not null',
};

export const dependencySchema = z.looseObject({
  node_id: z.string(),
  state: z.enum(STATES),
});
export type Dependency = z.infer<typeof dependencySchema>;

export const expectationSchema = z.looseObject({
  field: z.string(),
  operator: z.enum(OPERATORS),
  value: z.array(z.unknown()).optional(),
});
export type Expectation = z.infer<typeof expectationSchema>;

export const positionSchema = z.looseObject({ x: z.number(), y: z.number() });

export const retrySchema = z.looseObject({
  max_attempts: z.number().int().optional(),
  initial_backoff_ms: z.number().int().optional(),
  max_backoff_ms: z.number().int().optional(),
});
export type Retry = z.infer<typeof retrySchema>;

const commonFields = {
  node_id: z.string(),
  depends_on: z.array(dependencySchema).optional(),
  trigger: z.enum(TRIGGERS).optional(),
  ui: positionSchema.optional(),
};

export const conditionNodeSchema = z.looseObject({
  ...commonFields,
  node_type: z.literal('condition'),
  expect: z.array(expectationSchema),
  match: z.enum(MATCHES).optional(),
});
export type ConditionNode = z.infer<typeof conditionNodeSchema>;

export const taskNodeSchema = z.looseObject({
  ...commonFields,
  node_type: z.literal('task'),
  task_name: z.string(),
  parameters: z.record(z.string(), z.unknown()).nullable().optional(),
  retry: retrySchema.optional(),
  timeout_ms: z.number().int().optional(),
});
export type TaskNode = z.infer<typeof taskNodeSchema>;

export const ruleNodeSchema = z.discriminatedUnion('node_type', [conditionNodeSchema, taskNodeSchema]);
export type RuleNode = z.infer<typeof ruleNodeSchema>;
export type NodeType = RuleNode['node_type'];

export const ruleSetSchema = z.looseObject({
  company_id: z.string(),
  rules: z.array(ruleNodeSchema),
});
export type RuleSet = z.infer<typeof ruleSetSchema>;

/** Fields the canvas does not know, kept as they are. */
type UnknownFields = Record<string, unknown>;

/** A condition without the fields the canvas holds as graph structure (`node_id`, `depends_on`, `ui`). */
export interface ConditionBody extends UnknownFields {
  node_type: 'condition';
  expect: Expectation[];
  match?: Match;
  trigger?: Trigger;
}

/** A task without the fields the canvas holds as graph structure. */
export interface TaskBody extends UnknownFields {
  node_type: 'task';
  task_name: string;
  parameters?: Record<string, unknown> | null;
  retry?: Retry;
  timeout_ms?: number;
  trigger?: Trigger;
}

export type RuleBody = ConditionBody | TaskBody;

/** A readable one-line description of each zod issue, with its JSON path. */
export function describeIssues(error: z.ZodError, root = ''): string[] {
  return error.issues.map((issue) => {
    const path = formatPath(root, issue.path);
    return path ? `${path}: ${issue.message}` : issue.message;
  });
}

function formatPath(root: string, path: readonly PropertyKey[]): string {
  let out = root;
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out ? `.${String(key)}` : String(key);
  }
  return out;
}

/**
 * Reads a rule set someone pasted or imported: `{company_id?, rules}` or a
 * bare list of nodes. The company id, when absent, is the one given.
 */
export function parseRuleSetInput(
  text: string,
  companyId: string,
): { ok: true; ruleSet: RuleSet; note?: string } | { ok: false; errors: string[] } {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    return { ok: false, errors: [`not valid JSON: ${error instanceof Error ? error.message : String(error)}`] };
  }
  const wrapped: unknown = Array.isArray(raw) ? { company_id: companyId, rules: raw } : raw;
  if (wrapped !== null && typeof wrapped === 'object' && !('company_id' in wrapped)) {
    (wrapped as Record<string, unknown>).company_id = companyId;
  }
  const parsed = ruleSetSchema.safeParse(wrapped);
  if (!parsed.success) return { ok: false, errors: describeIssues(parsed.error) };
  const ruleSet = parsed.data;
  if (ruleSet.company_id !== companyId) {
    return {
      ok: true,
      ruleSet: { ...ruleSet, company_id: companyId },
      note: `The file was for company “${ruleSet.company_id}”; it is imported into “${companyId}”.`,
    };
  }
  return { ok: true, ruleSet };
}
