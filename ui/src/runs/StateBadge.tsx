/** A node's state and a run's status, as badges with an icon (colour is never the only cue). */
import { IconAlert, IconCheck, IconCircle, IconClock, IconMinus, IconX } from '../components/icons';
import { Spinner } from '../components/ui';
import type { NodeState } from '../model/runs';

export function StateIcon({ state, size = 12 }: { state: NodeState; size?: number }) {
  switch (state) {
    case 'success':
      return <IconCheck size={size} strokeWidth={3} />;
    case 'failure':
      return <IconX size={size} strokeWidth={3} />;
    case 'skipped':
      return <IconMinus size={size} strokeWidth={3} />;
    case 'running':
      return <Spinner size={size - 2} />;
    case 'pending':
      return <IconCircle size={size} strokeWidth={2.5} />;
  }
}

/** `✓ success`, `✕ failure`, `– skipped`, `◌ running`, `○ pending`. */
export function NodeStateBadge({ state, testId }: { state: NodeState; testId?: string }) {
  return (
    <span className={`state-badge state-badge-${state}`} data-testid={testId} data-state={state}>
      <StateIcon state={state} size={11} />
      {state}
    </span>
  );
}

/** A task waiting for its next attempt (its state is still `pending`). */
export function RetryingBadge({ testId }: { testId?: string }) {
  return (
    <span className="state-badge state-badge-running" data-testid={testId} data-state="pending" title="An attempt failed with a retryable error; the next one is scheduled">
      <IconClock size={11} strokeWidth={2.5} />
      retrying
    </span>
  );
}

const STATUS_TONE: Record<string, string> = {
  succeeded: 'success',
  failed: 'failure',
  aborted: 'aborted',
  running: 'running',
  queued: 'queued',
};

export function RunStatusBadge({ status, large }: { status: string; large?: boolean }) {
  const tone = STATUS_TONE[status] ?? 'queued';
  return (
    <span className={`status-badge status-badge-${tone}${large ? ' is-large' : ''}`} data-status={status}>
      {status === 'succeeded' ? (
        <IconCheck size={12} strokeWidth={3} />
      ) : status === 'failed' ? (
        <IconX size={12} strokeWidth={3} />
      ) : status === 'aborted' ? (
        <IconAlert size={12} />
      ) : status === 'running' ? (
        <Spinner size={10} />
      ) : (
        <IconClock size={12} />
      )}
      {status}
    </span>
  );
}

/** How a live stream is doing: `Live`, `Reconnecting…`, or stopped with a way to try again. */
export function LiveIndicator({ status, onRetry, endedText }: { status: string; onRetry?: () => void; endedText?: string }) {
  switch (status) {
    case 'live':
      return (
        <span className="live-indicator is-live" role="status" title="New events appear as they happen" data-testid="live-status">
          <span className="live-dot" aria-hidden="true" />
          Live
        </span>
      );
    case 'connecting':
      return (
        <span className="live-indicator" role="status" data-testid="live-status">
          <Spinner size={10} /> Connecting…
        </span>
      );
    case 'reconnecting':
      return (
        <span className="live-indicator is-warning" role="status" title="The connection dropped: reconnecting, without missing an event" data-testid="live-status">
          <Spinner size={10} /> Reconnecting…
        </span>
      );
    case 'failed':
      return (
        <span className="live-indicator is-danger" role="status" data-testid="live-status">
          Live updates stopped
          {onRetry ? (
            <button type="button" className="link-button" onClick={onRetry}>
              Retry
            </button>
          ) : null}
        </span>
      );
    case 'ended':
      return endedText ? (
        <span className="live-indicator" role="status" data-testid="live-status">
          {endedText}
        </span>
      ) : null;
    default:
      return null;
  }
}
