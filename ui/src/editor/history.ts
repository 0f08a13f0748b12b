/**
 * Undo/redo for the editor's document, as a pure reducer.
 *
 * - `set` records a step; steps with the same `key` within a second
 *   coalesce (typing into one field is one step; a node deletion and the
 *   removal of its edges are one step).
 * - `transient` changes the present without recording (a node being
 *   dragged), remembering where it started; `commit` records that start as
 *   one step (the drag's end).
 *   A move without a drag (arrow keys) is recorded like a `set`.
 * - `silent` changes the present and is never undone (selection, measured sizes).
 */

export interface HistoryState<T> {
  past: T[];
  present: T;
  future: T[];
  /** The present before the first transient change since the last commit. */
  pendingBase: T | null;
  lastKey: string | null;
  lastAt: number;
}

export type HistoryAction<T> =
  | { type: 'set'; update: (present: T) => T; key?: string; now: number; windowMs?: number }
  | { type: 'transient'; update: (present: T) => T }
  | { type: 'commit'; update?: (present: T) => T; now: number }
  | { type: 'silent'; update: (present: T) => T }
  | { type: 'undo'; carry?: (from: T, to: T) => T }
  | { type: 'redo'; carry?: (from: T, to: T) => T }
  | { type: 'reset'; value: T };

export const HISTORY_LIMIT = 200;
const COALESCE_MS = 1000;

export function initialHistory<T>(value: T): HistoryState<T> {
  return { past: [], present: value, future: [], pendingBase: null, lastKey: null, lastAt: 0 };
}

function record<T>(state: HistoryState<T>, before: T, next: T, key: string | null, now: number): HistoryState<T> {
  if (next === before) return state;
  return {
    past: [...state.past, before].slice(-HISTORY_LIMIT),
    present: next,
    future: [],
    pendingBase: null,
    lastKey: key,
    lastAt: now,
  };
}

export function historyReducer<T>(state: HistoryState<T>, action: HistoryAction<T>): HistoryState<T> {
  switch (action.type) {
    case 'set': {
      const next = action.update(state.present);
      if (next === state.present) return state;
      const key = action.key ?? null;
      if (key !== null && key === state.lastKey && action.now - state.lastAt < (action.windowMs ?? COALESCE_MS) && state.pendingBase === null) {
        return { ...state, present: next, future: [], lastAt: action.now };
      }
      return record(state, state.pendingBase ?? state.present, next, key, action.now);
    }
    case 'transient': {
      const next = action.update(state.present);
      if (next === state.present) return state;
      return { ...state, present: next, pendingBase: state.pendingBase ?? state.present };
    }
    case 'commit': {
      // A move without a drag before it (arrow keys): one step per second of moves.
      if (state.pendingBase === null) {
        return action.update ? historyReducer(state, { type: 'set', update: action.update, key: 'move', now: action.now }) : state;
      }
      const next = action.update ? action.update(state.present) : state.present;
      return record({ ...state, lastKey: null }, state.pendingBase, next, null, 0);
    }
    case 'silent': {
      const next = action.update(state.present);
      return next === state.present ? state : { ...state, present: next };
    }
    case 'undo': {
      const previous = state.past[state.past.length - 1];
      if (previous === undefined) return state;
      const present = action.carry ? action.carry(state.present, previous) : previous;
      return { past: state.past.slice(0, -1), present, future: [state.present, ...state.future], pendingBase: null, lastKey: null, lastAt: 0 };
    }
    case 'redo': {
      const next = state.future[0];
      if (next === undefined) return state;
      const present = action.carry ? action.carry(state.present, next) : next;
      return { past: [...state.past, state.present], present, future: state.future.slice(1), pendingBase: null, lastKey: null, lastAt: 0 };
    }
    case 'reset':
      return initialHistory(action.value);
  }
}
