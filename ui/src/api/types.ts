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
export const NODE_STATES = ['pending', 'running', 'success', 'failure', 'skipped'] as const;

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
});
export const runSchema = z.looseObject({
  run_id: z.string(),
  company_id: z.string(),
  event_id: z.string().optional(),
  rule_version: z.number().optional(),
  status: z.string(),
  nodes: z.array(runNodeSchema).optional(),
  documents: z.array(z.unknown()).optional(),
});
export type Run = z.infer<typeof runSchema>;
export const runListSchema = z.looseObject({ items: z.array(runSchema), next_cursor: z.string().nullish() });
export type RunList = z.infer<typeof runListSchema>;

/** `POST /payment-rules/{company_id}/simulate` (planned): each node's state, reasons and resolved parameters. */
export const simulationSchema = z.looseObject({
  nodes: z.array(
    z.looseObject({
      node_id: z.string(),
      state: z.string(),
      reasons: z.array(z.unknown()).optional(),
      parameters: z.unknown().optional(),
    }),
  ),
});
export type Simulation = z.infer<typeof simulationSchema>;
