/**
 * The task catalogue (`GET /tasks`) as the canvas uses it: parameter specs
 * read from each task's JSON Schema, output fields for `$context` completion,
 * and the palette's groups.
 */
import { z } from 'zod';

export const taskSchema = z.looseObject({
  name: z.string(),
  title: z.string().optional(),
  description: z.string().optional(),
  parameters_schema: z.record(z.string(), z.unknown()).nullable().optional(),
  output: z.unknown().optional(),
});
export type TaskSpec = z.infer<typeof taskSchema>;

/** How a parameter's text is turned into a JSON value. */
export type ParamKind = 'string' | 'integer' | 'number' | 'decimal' | 'boolean' | 'json';

export interface ParamSpec {
  name: string;
  required: boolean;
  description: string;
  kind: ParamKind;
  /** A short type hint for people: "text", "integer ≥ 1", "decimal 0–1", "one of GET, POST…". */
  hint: string;
  enumValues: string[];
}

type JsonSchema = Record<string, unknown>;

function asSchema(value: unknown): JsonSchema {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as JsonSchema) : {};
}

function typesOf(schema: JsonSchema): string[] {
  const type = schema.type;
  if (typeof type === 'string') return [type];
  if (Array.isArray(type)) return type.filter((t): t is string => typeof t === 'string');
  return [];
}

/** The literal alternative of a property (`anyOf: [literal, {$ref: context_path}]`), or the property itself. */
function literalSchema(property: JsonSchema): JsonSchema {
  const anyOf = property.anyOf;
  if (Array.isArray(anyOf)) {
    const literal = anyOf.map(asSchema).find((option) => !('$ref' in option));
    if (literal) return literal;
  }
  return property;
}

function kindAndHint(schema: JsonSchema): { kind: ParamKind; hint: string; enumValues: string[] } {
  const types = typesOf(schema);
  const enumValues = Array.isArray(schema.enum) ? schema.enum.map(String) : [];
  if (enumValues.length > 0) return { kind: 'string', hint: `one of ${enumValues.join(', ')}`, enumValues };
  const range = rangeHint(schema);
  if (schema.format === 'decimal') return { kind: 'decimal', hint: `decimal${range}`, enumValues };
  if (types.length === 1 && types[0] === 'integer') return { kind: 'integer', hint: `integer${range}`, enumValues };
  if (types.length === 1 && types[0] === 'number') return { kind: 'number', hint: `number${range}`, enumValues };
  if (types.length === 1 && types[0] === 'boolean') return { kind: 'boolean', hint: 'true or false', enumValues };
  if (types.length > 0 && types.every((t) => t === 'string' || t === 'integer')) {
    const what = types.includes('integer') ? 'text or integer' : formatHint(schema);
    return { kind: 'string', hint: what, enumValues };
  }
  if (types.length === 1 && types[0] === 'array') return { kind: 'json', hint: 'list (JSON)', enumValues };
  if (types.length === 1 && types[0] === 'object') return { kind: 'json', hint: 'object (JSON)', enumValues };
  return { kind: 'json', hint: 'text, or JSON', enumValues };
}

function formatHint(schema: JsonSchema): string {
  if (schema.format === 'date-time') return 'date-time (RFC 3339)';
  if (schema.format === 'uri') return 'URL';
  if (typeof schema.pattern === 'string' && schema.pattern === '^[A-Z]{3}$') return 'currency code, e.g. EUR';
  return 'text';
}

function rangeHint(schema: JsonSchema): string {
  const min = typeof schema.minimum === 'number' ? schema.minimum : undefined;
  const max = typeof schema.maximum === 'number' ? schema.maximum : undefined;
  if (min !== undefined && max !== undefined) return ` ${min}–${max}`;
  if (min !== undefined) return ` ≥ ${min}`;
  if (max !== undefined) return ` ≤ ${max}`;
  return '';
}

export function parameterSpecs(task: TaskSpec | undefined): ParamSpec[] {
  if (!task) return [];
  const schema = asSchema(task.parameters_schema);
  const properties = asSchema(schema.properties);
  const required = new Set(Array.isArray(schema.required) ? schema.required.map(String) : []);
  return Object.entries(properties).map(([name, raw]) => {
    const property = asSchema(raw);
    const literal = literalSchema(property);
    const description = typeof property.description === 'string' ? property.description : typeof literal.description === 'string' ? literal.description : '';
    return { name, required: required.has(name), description, ...kindAndHint(literal) };
  });
}

/** Whether the task takes parameters it does not list (e.g. `notify`'s further fields). */
export function acceptsExtraParameters(task: TaskSpec | undefined): boolean {
  if (!task) return true;
  return asSchema(task.parameters_schema).additionalProperties !== false;
}

export interface OutputField {
  name: string;
  description: string;
}

export function outputFields(task: TaskSpec | undefined): OutputField[] {
  if (!task) return [];
  const properties = asSchema(asSchema(task.output).properties);
  return Object.entries(properties).map(([name, raw]) => {
    const description = asSchema(raw).description;
    return { name, description: typeof description === 'string' ? description : '' };
  });
}

/** A readable name for a task: its title, else the last part of its name. */
export function taskTitle(task: TaskSpec | undefined, name: string): string {
  if (task?.title) return task.title;
  const last = name.split('.').pop() ?? name;
  const words = last.replace(/_/g, ' ');
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/** The palette's groups, in this order; custom tasks go under their namespace. */
export const TASK_GROUPS = ['Shipping', 'Billing & payouts', 'Subscriptions & access', 'Messages & integrations', 'Flow control'] as const;

export function taskGroup(name: string): string {
  if (!name.startsWith('payment.tasks.')) {
    const namespace = name.split('.').slice(0, -1).join('.');
    return namespace || 'Other tasks';
  }
  const short = name.slice('payment.tasks.'.length);
  if (short.includes('shipment')) return 'Shipping';
  if (/invoice|royalty|commission|refund|payout/.test(short)) return 'Billing & payouts';
  if (/subscription|access/.test(short)) return 'Subscriptions & access';
  if (/notify|http|webhook|email/.test(short)) return 'Messages & integrations';
  if (/abort|wait|delay/.test(short)) return 'Flow control';
  return 'Other tasks';
}

/** A node id suggestion for a new node of this task: `generate-shipment`, `notify`. */
export function baseNodeId(taskName: string): string {
  const last = taskName.split('.').pop() ?? 'task';
  return last.replace(/[^A-Za-z0-9]+/g, '-').replace(/^-|-$/g, '').toLowerCase() || 'task';
}

/** `base`, or `base-2`, `base-3`… whichever is free. */
export function uniqueId(base: string, taken: ReadonlySet<string>): string {
  if (!taken.has(base)) return base;
  let n = 2;
  while (taken.has(`${base}-${n}`)) n += 1;
  return `${base}-${n}`;
}

/**
 * Text typed into a parameter field, as the JSON value to store: a
 * `$context.` path stays a string; numbers and JSON are parsed where the
 * parameter expects them; an empty field means "not set" (undefined).
 */
export function parseParameterText(text: string, kind: ParamKind): unknown {
  if (text.trim() === '') return undefined;
  if (text.startsWith('$context.')) return text;
  switch (kind) {
    case 'integer':
    case 'number': {
      const number = Number(text);
      return Number.isFinite(number) && text.trim() !== '' ? number : text;
    }
    case 'boolean':
      return text === 'true' ? true : text === 'false' ? false : text;
    case 'json': {
      const trimmed = text.trim();
      if (/^[[{]/.test(trimmed) || trimmed === 'true' || trimmed === 'false' || trimmed === 'null' || /^-?\d+(\.\d+)?$/.test(trimmed)) {
        try {
          return JSON.parse(trimmed) as unknown;
        } catch {
          return text;
        }
      }
      return text;
    }
    default:
      return text;
  }
}

/** A stored parameter value as text for its field. */
export function parameterText(value: unknown): string {
  if (value === undefined) return '';
  if (typeof value === 'string') return value;
  return JSON.stringify(value);
}
