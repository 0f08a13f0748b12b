/**
 * Server-Sent Events read with fetch (`EventSource` cannot send the bearer
 * token): a parser for the `text/event-stream` format, and `follow`, which
 * keeps a stream open across network failures and resumes each time from
 * the last event received (`Last-Event-ID`), so nothing is missed or seen
 * twice.
 */

/** One dispatched event: `id:` (the last one seen, as the spec says), `event:` and `data:`. */
export interface SseMessage {
  id: string;
  event: string;
  data: string;
}

/**
 * The `text/event-stream` format, fed chunk by chunk: lines end with CRLF,
 * LF or CR (a CR at the end of a chunk waits for the next one), comments
 * start with `:`, `data:` lines join with LF, and a blank line dispatches.
 */
export class SseParser {
  private buffer = '';
  private data: string[] = [];
  private event = '';
  /** The last `id:` seen: what to send as `Last-Event-ID` on reconnecting. */
  lastEventId = '';
  /** The server's `retry:` advice, in milliseconds. */
  retryMs: number | undefined;

  push(chunk: string): SseMessage[] {
    this.buffer += chunk;
    const messages: SseMessage[] = [];
    let start = 0;
    for (;;) {
      const lf = this.buffer.indexOf('\n', start);
      const cr = this.buffer.indexOf('\r', start);
      if (lf < 0 && cr < 0) break;
      let end: number;
      let next: number;
      if (cr >= 0 && (lf < 0 || cr < lf)) {
        // A CR alone, or the start of CRLF; at the end of the chunk, it may be either.
        if (cr === this.buffer.length - 1) break;
        end = cr;
        next = this.buffer[cr + 1] === '\n' ? cr + 2 : cr + 1;
      } else {
        end = lf;
        next = lf + 1;
      }
      const message = this.line(this.buffer.slice(start, end));
      if (message) messages.push(message);
      start = next;
    }
    this.buffer = this.buffer.slice(start);
    return messages;
  }

  private line(line: string): SseMessage | null {
    if (line === '') return this.dispatch();
    if (line.startsWith(':')) return null;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'data':
        this.data.push(value);
        break;
      case 'event':
        this.event = value;
        break;
      case 'id':
        if (!value.includes('\0')) this.lastEventId = value;
        break;
      case 'retry':
        if (/^\d+$/.test(value)) this.retryMs = Number(value);
        break;
      default:
        // Unknown fields are ignored.
        break;
    }
    return null;
  }

  private dispatch(): SseMessage | null {
    const data = this.data;
    const event = this.event;
    this.data = [];
    this.event = '';
    if (data.length === 0) return null;
    return { id: this.lastEventId, event: event || 'message', data: data.join('\n') };
  }
}

export type StreamStatus = 'connecting' | 'live' | 'reconnecting' | 'ended' | 'failed';

/** Opens the stream once, from `lastEventId`; resolves when the server ends it, rejects on failure. */
export type Connect = (lastEventId: string, handlers: { onOpen: () => void; onMessage: (message: SseMessage) => void }, signal: AbortSignal) => Promise<void>;

export interface FollowOptions {
  connect: Connect;
  onMessage: (message: SseMessage) => void;
  onStatus?: (status: StreamStatus, error?: unknown) => void;
  signal: AbortSignal;
  /** Where to start (an event id already seen); empty for the beginning. */
  lastEventId?: string;
  /** Whether to open the stream again when the server ended it (a company stream never ends on purpose). */
  reconnectAfterEnd?: () => boolean;
  /** An error after which trying again cannot help (e.g. 401, 404). */
  isPermanent?: (error: unknown) => boolean;
  /** Waits between attempts, by the number of failures in a row (the last one repeats). */
  delaysMs?: readonly number[];
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

export const RECONNECT_DELAYS_MS = [500, 1000, 2000, 5000, 10000] as const;

function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done);
  });
}

/**
 * Follows a stream until `signal` aborts: reconnects after a failure (with
 * backoff) or, when `reconnectAfterEnd` says so, after the server ended
 * it, each time from the id of the last event received.
 */
export async function follow(options: FollowOptions): Promise<void> {
  const { connect, onMessage, onStatus, signal } = options;
  const delays = options.delaysMs ?? RECONNECT_DELAYS_MS;
  const sleep = options.sleep ?? abortableSleep;
  let lastEventId = options.lastEventId ?? '';
  let failures = 0;
  // Read afresh after each await (the loop's check narrows it for the compiler).
  const aborted = () => signal.aborted;
  let first = true;
  while (!signal.aborted) {
    onStatus?.(first ? 'connecting' : 'reconnecting');
    first = false;
    try {
      await connect(
        lastEventId,
        {
          onOpen: () => {
            failures = 0;
            onStatus?.('live');
          },
          onMessage: (message) => {
            if (message.id) lastEventId = message.id;
            onMessage(message);
          },
        },
        signal,
      );
      if (aborted()) return;
      if (!options.reconnectAfterEnd?.()) {
        onStatus?.('ended');
        return;
      }
      await sleep(delays[0] ?? 500, signal);
    } catch (error) {
      if (aborted()) return;
      if (options.isPermanent?.(error)) {
        onStatus?.('failed', error);
        return;
      }
      failures += 1;
      onStatus?.('reconnecting', error);
      await sleep(delays[Math.min(failures, delays.length) - 1] ?? 1000, signal);
    }
  }
}
