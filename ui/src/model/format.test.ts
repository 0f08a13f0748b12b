import { describe, expect, it } from 'vitest';
import { durationMs, formatDuration, formatRelative, rangeBounds } from './format';

describe('format', () => {
  it('formats durations at a useful precision', () => {
    expect(formatDuration(0)).toBe('<1 ms');
    expect(formatDuration(0.4)).toBe('<1 ms');
    expect(formatDuration(12.4)).toBe('12 ms');
    expect(formatDuration(1430)).toBe('1.4 s');
    expect(formatDuration(42_000)).toBe('42 s');
    expect(formatDuration(125_000)).toBe('2 min 5 s');
    expect(formatDuration(3_780_000)).toBe('1 h 3 min');
    expect(durationMs('2026-11-29T01:20:16.50324Z', '2026-11-29T01:20:16.503695Z')).toBeCloseTo(0, 0);
    expect(durationMs('2026-11-29T01:20:16Z', '2026-11-29T01:20:18.5Z')).toBe(2500);
    expect(durationMs('2026-11-29T01:20:16Z', null)).toBeUndefined();
  });

  it('says how long ago, then gives up for the date', () => {
    const now = Date.parse('2026-11-29T12:00:00Z');
    expect(formatRelative('2026-11-29T11:59:58Z', now)).toBe('just now');
    expect(formatRelative('2026-11-29T11:59:30Z', now)).toBe('30 s ago');
    expect(formatRelative('2026-11-29T11:55:00Z', now)).toBe('5 min ago');
    expect(formatRelative('2026-11-29T09:00:00Z', now)).toBe('3 h ago');
    expect(formatRelative('2026-11-28T11:00:00Z', now)).toBe('1 day ago');
    expect(formatRelative('2026-11-01T11:00:00Z', now)).toBeUndefined();
  });

  it('turns a time range into created_after / created_before', () => {
    const now = Date.parse('2026-11-29T12:00:00Z');
    expect(rangeBounds('', now)).toEqual({});
    expect(rangeBounds('1h', now)).toEqual({ createdAfter: '2026-11-29T11:00:00.000Z' });
    const custom = rangeBounds('custom', now, '2026-11-01T00:00', '');
    expect(custom.createdBefore).toBeUndefined();
    expect(new Date(custom.createdAfter ?? '').getTime()).toBe(new Date('2026-11-01T00:00').getTime());
    expect(rangeBounds('custom', now, 'nonsense', '')).toEqual({});
  });
});
