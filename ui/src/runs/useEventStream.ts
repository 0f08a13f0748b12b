/**
 * Follows an SSE stream of run events while a screen shows it: parses each
 * event, reconnects after failures from the last event received, and says
 * how the connection is doing (for the "Live" indicator).
 */
import { useEffect, useLayoutEffect, useRef, useState } from 'react';
import { isPermanentError } from '../api/client';
import { follow, type Connect, type StreamStatus } from '../api/sse';
import { runEventSchema, type RunEvent } from '../api/types';

export type LiveStatus = StreamStatus | 'off';

export function parseRunEvent(data: string): RunEvent | undefined {
  try {
    const parsed = runEventSchema.safeParse(JSON.parse(data));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

export function useEventStream({
  connect,
  onEvent,
  reconnectAfterEnd,
  startAfter,
  restartKey = 0,
}: {
  /** The stream to follow; null: none (yet). Keep it stable (memoised). */
  connect: Connect | null;
  onEvent: (event: RunEvent) => void;
  /** Asked when the server ends the stream: open it again? */
  reconnectAfterEnd?: () => boolean;
  /** Where to start the first time (an event id already seen). */
  startAfter?: string;
  /** A new value opens the stream again, from the last event received. */
  restartKey?: number;
}): { status: LiveStatus; error: unknown } {
  const [state, setState] = useState<{ status: LiveStatus; error: unknown }>({ status: 'off', error: undefined });
  const handlers = useRef({ onEvent, reconnectAfterEnd });
  useLayoutEffect(() => {
    handlers.current = { onEvent, reconnectAfterEnd };
  });
  const lastId = useRef<string | undefined>(undefined);

  useEffect(() => {
    if (!connect) return;
    const controller = new AbortController();
    void follow({
      connect,
      signal: controller.signal,
      lastEventId: lastId.current ?? startAfter ?? '',
      onMessage: (message) => {
        if (message.id) lastId.current = message.id;
        const event = parseRunEvent(message.data);
        if (event) handlers.current.onEvent(event);
      },
      onStatus: (status, error) => {
        if (!controller.signal.aborted) setState({ status, error });
      },
      reconnectAfterEnd: () => handlers.current.reconnectAfterEnd?.() ?? false,
      isPermanent: isPermanentError,
    });
    return () => {
      controller.abort();
    };
  }, [connect, startAfter, restartKey]);

  return connect ? state : { status: 'off', error: undefined };
}
