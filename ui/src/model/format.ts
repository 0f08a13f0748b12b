/** Durations and times as people read them. */

/** Milliseconds between two RFC 3339 times; undefined unless both are known and in order. */
export function durationMs(from: string | null | undefined, to: string | null | undefined): number | undefined {
  if (!from || !to) return undefined;
  const ms = Date.parse(to) - Date.parse(from);
  return Number.isFinite(ms) && ms >= 0 ? ms : undefined;
}

/** `<1 ms`, `12 ms`, `1.4 s`, `2 min 5 s`, `1 h 3 min` (timestamps are µs apart at best: 0 reads as under 1 ms). */
export function formatDuration(ms: number): string {
  if (ms < 1) return '<1 ms';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 10_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 60_000) return `${Math.round(ms / 1000)} s`;
  const minutes = Math.floor(ms / 60_000);
  if (minutes < 60) {
    const seconds = Math.round((ms % 60_000) / 1000);
    return seconds > 0 ? `${minutes} min ${seconds} s` : `${minutes} min`;
  }
  const hours = Math.floor(minutes / 60);
  const rest = minutes % 60;
  return rest > 0 ? `${hours} h ${rest} min` : `${hours} h`;
}

/** `just now`, `12 s ago`, `5 min ago`, `3 h ago`, `2 days ago`; undefined past a week (show the date). */
export function formatRelative(iso: string, now: number): string | undefined {
  const at = Date.parse(iso);
  if (!Number.isFinite(at)) return undefined;
  const seconds = Math.round((now - at) / 1000);
  if (seconds < 5) return 'just now';
  if (seconds < 60) return `${seconds} s ago`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return `${hours} h ago`;
  const days = Math.floor(hours / 24);
  if (days <= 7) return `${days} day${days === 1 ? '' : 's'} ago`;
  return undefined;
}

/** The time ranges the run list offers. */
export const TIME_RANGES = [
  { value: '', label: 'Any time' },
  { value: '15m', label: 'Last 15 minutes' },
  { value: '1h', label: 'Last hour' },
  { value: '24h', label: 'Last 24 hours' },
  { value: '7d', label: 'Last 7 days' },
  { value: 'custom', label: 'Custom range…' },
] as const;

const RANGE_MS: Record<string, number> = { '15m': 15 * 60_000, '1h': 3_600_000, '24h': 86_400_000, '7d': 7 * 86_400_000 };

/**
 * The `created_after`/`created_before` of a range: a preset counts back
 * from `now`; a custom range takes `datetime-local` values (the reader's
 * time zone).
 */
export function rangeBounds(range: string, now: number, from?: string, to?: string): { createdAfter?: string; createdBefore?: string } {
  const preset = RANGE_MS[range];
  if (preset !== undefined) return { createdAfter: new Date(now - preset).toISOString() };
  if (range !== 'custom') return {};
  const bounds: { createdAfter?: string; createdBefore?: string } = {};
  const after = from ? new Date(from) : undefined;
  const before = to ? new Date(to) : undefined;
  if (after && !Number.isNaN(after.getTime())) bounds.createdAfter = after.toISOString();
  if (before && !Number.isNaN(before.getTime())) bounds.createdBefore = before.toISOString();
  return bounds;
}
