import { describe, expect, it } from 'vitest';
import { HISTORY_LIMIT, historyReducer, initialHistory, type HistoryState } from './history';

type S = HistoryState<number>;
const add = (n: number) => (value: number) => value + n;

describe('the undo history', () => {
  it('records steps, undoes and redoes them', () => {
    let state: S = initialHistory(0);
    state = historyReducer(state, { type: 'set', update: add(1), now: 0 });
    state = historyReducer(state, { type: 'set', update: add(2), now: 5000 });
    expect(state.present).toBe(3);
    state = historyReducer(state, { type: 'undo' });
    expect(state.present).toBe(1);
    state = historyReducer(state, { type: 'undo' });
    expect(state.present).toBe(0);
    state = historyReducer(state, { type: 'undo' });
    expect(state.present).toBe(0);
    state = historyReducer(state, { type: 'redo' });
    expect(state.present).toBe(1);
    // A new step forgets the redo list.
    state = historyReducer(state, { type: 'set', update: add(10), now: 9000 });
    expect(state.future).toEqual([]);
    expect(historyReducer(state, { type: 'redo' }).present).toBe(11);
  });

  it('coalesces steps with the same key within a second', () => {
    let state: S = initialHistory(0);
    state = historyReducer(state, { type: 'set', update: add(1), key: 'typing', now: 0 });
    state = historyReducer(state, { type: 'set', update: add(1), key: 'typing', now: 400 });
    state = historyReducer(state, { type: 'set', update: add(1), key: 'typing', now: 800 });
    state = historyReducer(state, { type: 'set', update: add(1), key: 'other', now: 900 });
    expect(state.past).toEqual([0, 3]);
    state = historyReducer(state, { type: 'set', update: add(1), key: 'other', now: 5000 });
    expect(state.past).toEqual([0, 3, 4]);
    const quick = historyReducer(historyReducer(initialHistory(0), { type: 'set', update: add(1), key: 'k', now: 0, windowMs: 100 }), { type: 'set', update: add(1), key: 'k', now: 200, windowMs: 100 });
    expect(quick.past).toEqual([0, 1]);
  });

  it('records a drag as one step from where it started', () => {
    let state: S = initialHistory(0);
    state = historyReducer(state, { type: 'transient', update: add(1) });
    state = historyReducer(state, { type: 'transient', update: add(1) });
    expect(state.past).toEqual([]);
    state = historyReducer(state, { type: 'commit', update: add(1), now: 0 });
    expect(state.present).toBe(3);
    expect(state.past).toEqual([0]);
    expect(historyReducer(state, { type: 'undo' }).present).toBe(0);
  });

  it('never records silent changes, and carries state across undo', () => {
    let state: S = initialHistory(0);
    state = historyReducer(state, { type: 'silent', update: add(5) });
    expect(state.past).toEqual([]);
    state = historyReducer(state, { type: 'set', update: add(1), now: 0 });
    state = historyReducer(state, { type: 'undo', carry: (from, to) => to + (from % 2) * 100 });
    expect(state.present).toBe(5);
  });

  it('keeps at most HISTORY_LIMIT steps', () => {
    let state: S = initialHistory(0);
    for (let i = 0; i < HISTORY_LIMIT + 20; i += 1) state = historyReducer(state, { type: 'set', update: add(1), now: i * 2000 });
    expect(state.past.length).toBe(HISTORY_LIMIT);
  });
});
