/** The API's answers, checked with zod at the boundary. */
import { z } from 'zod';
import { taskSchema } from '../model/catalogue';
import { fieldProblemSchema } from '../model/problems';

export const taskListSchema = z.looseObject({ items: z.array(taskSchema) });

export const companySchema = z.looseObject({
  id: z.string(),
  name: z.string(),
  created_at: z.string().optional(),
});
export type Company = z.infer<typeof companySchema>;
export const companyListSchema = z.looseObject({ items: z.array(companySchema) });

export const ruleVersionSchema = z.looseObject({
  id: z.string().optional(),
  company_id: z.string(),
  rules: z.array(z.unknown()),
  created_at: z.string().optional(),
  updated_at: z.string().optional(),
  version: z.number().int(),
});
export type RuleVersionBody = z.infer<typeof ruleVersionSchema>;

export const versionSummarySchema = z.looseObject({
  version: z.number().int(),
  node_count: z.number().int(),
  created_at: z.string(),
});
export type VersionSummary = z.infer<typeof versionSummarySchema>;
export const versionListSchema = z.looseObject({ items: z.array(versionSummarySchema) });

export const validationResultSchema = z.looseObject({
  valid: z.boolean(),
  problems: z.array(fieldProblemSchema),
});
export type ValidationResult = z.infer<typeof validationResultSchema>;

/** RFC 9457 problem details, as the server answers every error. */
export const problemDetailsSchema = z.looseObject({
  type: z.string().optional(),
  title: z.string().optional(),
  status: z.number().optional(),
  detail: z.string().optional(),
  retryable: z.boolean().optional(),
  errors: z.array(fieldProblemSchema).optional(),
});
export type ProblemDetails = z.infer<typeof problemDetailsSchema>;

export const acceptedPaymentSchema = z.looseObject({ event_id: z.string(), run_id: z.string() });

export const RUN_STATUSES = ['queued', 'running', 'succeeded', 'failed', 'aborted'] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];
export const NODE_STATES = ['pending', 'running', 'success', 'failure', 'skipped'] as const;
export const EVENT_TYPES = ['product', 'digital_product', 'subscription', 'service'] as const;

/** A node of `GET /runs/{run_id}`: its checkpoint, or `pending` with 0 attempts. */
export const runNodeSchema = z.looseObject({
  node_id: z.string(),
  node_type: z.string().optional(),
  task_name: z.string().nullish(),
  state: z.string(),
  attempts: z.number().optional(),
  parameters: z.unknown().optional(),
  output: z.unknown().optional(),
  error: z.unknown().optional(),
  started_at: z.string().nullish(),
  finished_at: z.string().nullish(),
  next_attempt_at: z.string().nullish(),
  /** Earlier executions a redrive reset, oldest first. */
  history: z.array(z.unknown()).optional(),
});
export type RunNode = z.infer<typeof runNodeSchema>;

export const runDocumentSchema = z.looseObject({
  key: z.string().optional(),
  kind: z.string(),
  node_id: z.string(),
  body: z.unknown(),
  created_at: z.string().optional(),
});
export type RunDocument = z.infer<typeof runDocumentSchema>;

/** `GET /runs/{run_id}`. */
export const runSchema = z.looseObject({
  run_id: z.string(),
  company_id: z.string(),
  event_id: z.string().optional(),
  event_type: z.string().optional(),
  rule_version: z.number().optional(),
  status: z.string(),
  created_at: z.string().optional(),
  started_at: z.string().nullish(),
  finished_at: z.string().nullish(),
  /** Why the run as a whole failed (its rules could not be prepared). */
  error: z.unknown().optional(),
  nodes: z.array(runNodeSchema).optional(),
  documents: z.array(runDocumentSchema).optional(),
});
export type Run = z.infer<typeof runSchema>;

/** An item of `GET /runs`, and the answer to a redrive. */
export const runSummarySchema = z.looseObject({
  run_id: z.string(),
  company_id: z.string(),
  event_id: z.string(),
  event_type: z.string(),
  rule_version: z.number(),
  status: z.string(),
  redrive_count: z.number().optional(),
  created_at: z.string(),
  started_at: z.string().nullish(),
  finished_at: z.string().nullish(),
});
export type RunSummary = z.infer<typeof runSummarySchema>;
export const runListSchema = z.looseObject({ items: z.array(runSummarySchema), next_cursor: z.string().nullish() });
export type RunList = z.infer<typeof runListSchema>;

/** One event of a run or company stream (`data:` of the SSE message). */
export const runEventSchema = z.looseObject({
  id: z.number(),
  run_id: z.string(),
  company_id: z.string(),
  seq: z.number(),
  kind: z.string(),
  data: z.record(z.string(), z.unknown()).catch({}),
  created_at: z.string(),
});
export type RunEvent = z.infer<typeof runEventSchema>;

/** `POST /payment-rules/{company_id}/simulate`: every node's state, a condition's explanation, a task's resolved parameters and output. */
export const simulatedNodeSchema = z.looseObject({
  node_id: z.string(),
  node_type: z.string().optional(),
  task_name: z.string().nullish(),
  state: z.string(),
  attempts: z.number().optional(),
  parameters: z.unknown().optional(),
  output: z.unknown().optional(),
  error: z.unknown().optional(),
  /** Why the result is not the task's own (not executed in a simulation…). */
  note: z.string().nullish(),
});
export const simulationSchema = z.looseObject({
  company_id: z.string().optional(),
  rule_version: z.number().nullish(),
  /** `succeeded`, `failed` or `aborted`. */
  status: z.string(),
  /** The node ids in the order they were evaluated. */
  path: z.array(z.string()),
  nodes: z.array(simulatedNodeSchema),
  documents: z.array(runDocumentSchema).optional(),
});
export type Simulation = z.infer<typeof simulationSchema>;
