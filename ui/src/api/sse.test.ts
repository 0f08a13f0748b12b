import { describe, expect, it } from 'vitest';
import { ApiError } from './client';
import { follow, SseParser, type Connect, type SseMessage, type StreamStatus } from './sse';

describe('SseParser', () => {
  it('parses events with ids, kinds and data, whatever the chunking', () => {
    const text = 'id: 1\nevent: run.queued\ndata: {"a":1}\n\n: keep-alive\n\nid: 2\nevent: node.finished\ndata: {"b":\ndata: 2}\n\n';
    const whole = new SseParser().push(text);
    expect(whole).toEqual([
      { id: '1', event: 'run.queued', data: '{"a":1}' },
      { id: '2', event: 'node.finished', data: '{"b":\n2}' },
    ]);
    // One character at a time gives the same events.
    const parser = new SseParser();
    const byChar: SseMessage[] = [];
    for (const char of text) byChar.push(...parser.push(char));
    expect(byChar).toEqual(whole);
    expect(parser.lastEventId).toBe('2');
  });

  it('accepts CRLF and CR line ends, even split across chunks', () => {
    const parser = new SseParser();
    expect(parser.push('id: 7\r')).toEqual([]);
    expect(parser.push('\ndata: x\r\r')).toEqual([]);
    // The CR at the end could still be a CRLF: it dispatches once the next chunk says.
    expect(parser.push('data: y\r\n\r\n')).toEqual([{ id: '7', event: 'message', data: 'x' }, { id: '7', event: 'message', data: 'y' }]);
  });

  it('keeps the last id for events without one, ignores comments, unknown fields and a blank block', () => {
    const parser = new SseParser();
    const messages = parser.push('id: 5\n\n:comment\nfoo: bar\ndata\n\nretry: 3000\ndata:no-space\n\n');
    expect(messages).toEqual([
      { id: '5', event: 'message', data: '' },
      { id: '5', event: 'message', data: 'no-space' },
    ]);
    expect(parser.retryMs).toBe(3000);
  });
});

/** A scripted server: each connection sends some events, then ends or fails. */
function scripted(connections: ({ events: string[]; then: 'end' | Error } | 'refuse')[]) {
  const seen: string[] = [];
  let index = 0;
  const connect: Connect = (lastEventId, handlers) => {
    seen.push(lastEventId);
    const script = connections[index++];
    if (!script) return Promise.reject(new Error('no more connections'));
    if (script === 'refuse') return Promise.reject(new Error('connection refused'));
    handlers.onOpen();
    for (const id of script.events) handlers.onMessage({ id, event: 'node.finished', data: '{}' });
    return script.then === 'end' ? Promise.resolve() : Promise.reject(script.then);
  };
  return { connect, seen };
}

describe('follow', () => {
  it('reconnects after a failure from the last event received, with backoff', async () => {
    const controller = new AbortController();
    const { connect, seen } = scripted([
      { events: ['1', '2'], then: new Error('reset') },
      'refuse',
      { events: ['3'], then: 'end' },
    ]);
    const received: string[] = [];
    const statuses: StreamStatus[] = [];
    const sleeps: number[] = [];
    await follow({
      connect,
      signal: controller.signal,
      onMessage: (message) => received.push(message.id),
      onStatus: (status) => statuses.push(status),
      delaysMs: [10, 20, 40],
      sleep: (ms) => {
        sleeps.push(ms);
        return Promise.resolve();
      },
    });
    expect(received).toEqual(['1', '2', '3']);
    expect(seen).toEqual(['', '2', '2']);
    expect(sleeps).toEqual([10, 20]);
    expect(statuses[0]).toBe('connecting');
    expect(statuses).toContain('reconnecting');
    expect(statuses.at(-1)).toBe('ended');
  });

  it('starts from a given id and opens the stream again after it ends when asked', async () => {
    const controller = new AbortController();
    const { connect, seen } = scripted([
      { events: ['8'], then: 'end' },
      { events: ['9'], then: 'end' },
    ]);
    let ends = 0;
    await follow({
      connect,
      signal: controller.signal,
      lastEventId: '7',
      onMessage: () => undefined,
      reconnectAfterEnd: () => ++ends < 2,
      sleep: () => Promise.resolve(),
    });
    expect(seen).toEqual(['7', '8']);
  });

  it('gives up on a permanent error and stops when aborted', async () => {
    const statuses: [StreamStatus, unknown][] = [];
    await follow({
      connect: () => Promise.reject(new ApiError(404, 'run not found')),
      signal: new AbortController().signal,
      onMessage: () => undefined,
      onStatus: (status, error) => statuses.push([status, error]),
      isPermanent: (error) => error instanceof ApiError && error.status === 404,
    });
    expect(statuses.map(([status]) => status)).toEqual(['connecting', 'failed']);

    const controller = new AbortController();
    let attempts = 0;
    await follow({
      connect: () => {
        attempts += 1;
        if (attempts === 3) controller.abort();
        return Promise.reject(new Error('down'));
      },
      signal: controller.signal,
      onMessage: () => undefined,
      sleep: () => Promise.resolve(),
    });
    expect(attempts).toBe(3);
  });
});
