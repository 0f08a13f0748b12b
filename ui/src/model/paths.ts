/**
 * `$context` path completion: the paths a field may read, from a sample
 * event, the company, the run, and the outputs of the node's ancestors.
 */
import { outputFields, type TaskSpec } from './catalogue';

export interface PathSuggestion {
  path: string;
  /** What it is: a sample value, or the output field's description. */
  detail: string;
  group: 'Event' | 'Company' | 'Run' | 'Upstream outputs';
}

const MAX_DEPTH = 6;

function preview(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return `list of ${value.length}`;
  if (typeof value === 'object') return 'object';
  const text = JSON.stringify(value);
  return text.length > 32 ? `${text.slice(0, 31)}…` : text;
}

/** Every path in a sample event: objects are walked; lists are offered whole. */
export function eventPaths(sample: unknown): PathSuggestion[] {
  const out: PathSuggestion[] = [];
  const walk = (value: unknown, path: string, depth: number) => {
    if (value !== null && typeof value === 'object' && !Array.isArray(value) && depth < MAX_DEPTH) {
      for (const [key, child] of Object.entries(value)) {
        const childPath = `${path}.${key}`;
        out.push({ path: childPath, detail: preview(child), group: 'Event' });
        walk(child, childPath, depth + 1);
      }
    }
  };
  walk(sample, '$context.event', 0);
  return out;
}

export const COMPANY_PATHS: PathSuggestion[] = [
  { path: '$context.company.id', detail: 'the company’s id', group: 'Company' },
  { path: '$context.company.name', detail: 'the company’s name', group: 'Company' },
];

export const RUN_PATHS: PathSuggestion[] = [{ path: '$context.run.id', detail: 'this run’s id', group: 'Run' }];

export interface UpstreamNode {
  id: string;
  taskName?: string;
}

/** `$context.nodes.<id>.output.<field>` for every upstream task with a documented output. */
export function upstreamPaths(upstream: readonly UpstreamNode[], tasks: ReadonlyMap<string, TaskSpec>): PathSuggestion[] {
  const out: PathSuggestion[] = [];
  for (const node of upstream) {
    if (!node.taskName) continue;
    const fields = outputFields(tasks.get(node.taskName));
    for (const field of fields) {
      out.push({
        path: `$context.nodes.${node.id}.output.${field.name}`,
        detail: field.description || `output of ${node.id}`,
        group: 'Upstream outputs',
      });
    }
  }
  return out;
}

/**
 * The suggestions matching what was typed, best first: paths that start
 * with the text, then paths that contain it.
 */
export function filterSuggestions(all: readonly PathSuggestion[], text: string, limit = 50): PathSuggestion[] {
  const query = text.trim().toLowerCase();
  if (query === '' || query === '$' || '$context.'.startsWith(query)) return all.slice(0, limit);
  const starts: PathSuggestion[] = [];
  const contains: PathSuggestion[] = [];
  for (const suggestion of all) {
    const path = suggestion.path.toLowerCase();
    if (path === query) continue;
    if (path.startsWith(query)) starts.push(suggestion);
    else if (path.includes(query.replace(/^\$context\./, ''))) contains.push(suggestion);
  }
  return [...starts, ...contains].slice(0, limit);
}

/** Rewrites `$context.nodes.<from>.` to `$context.nodes.<to>.` in every string of a value, at any depth. */
export function renameNodeReferences<T>(value: T, from: string, to: string): T {
  const prefix = `$context.nodes.${from}.`;
  const exact = `$context.nodes.${from}`;
  const visit = (item: unknown): unknown => {
    if (typeof item === 'string') {
      if (item.startsWith(prefix)) return `$context.nodes.${to}.${item.slice(prefix.length)}`;
      if (item === exact) return `$context.nodes.${to}`;
      return item;
    }
    if (Array.isArray(item)) return item.map(visit);
    if (item !== null && typeof item === 'object') {
      return Object.fromEntries(Object.entries(item).map(([key, child]) => [key, visit(child)]));
    }
    return item;
  };
  return visit(value) as T;
}
