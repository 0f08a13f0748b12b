/** The sample payment event: the source of `$context.event…` completion (and, later, of simulations). */
import { useState } from 'react';
import { Button, Callout, Dialog } from '../components/ui';

export const DEFAULT_SAMPLE_EVENT = {
  type: 'product',
  total: '120.00',
  discount: '0',
  tax: '0',
  fees: '0',
  currency: 'BRL',
  agent_id: 'agent-7',
  customer: { id: 'cus-42', email: 'ana@example.com' },
  product: { id: 'book-1', type: 'book', name: 'The Payment Book' },
};

const storageKey = (companyId: string) => `moneyflow.sample-event.${companyId}`;

export function loadSampleEvent(companyId: string): Record<string, unknown> {
  try {
    const raw = localStorage.getItem(storageKey(companyId));
    if (raw) {
      const parsed: unknown = JSON.parse(raw);
      if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) return parsed as Record<string, unknown>;
    }
  } catch {
    // Fall through to the default.
  }
  return { company_id: companyId, ...DEFAULT_SAMPLE_EVENT };
}

export function saveSampleEvent(companyId: string, event: Record<string, unknown>): void {
  localStorage.setItem(storageKey(companyId), JSON.stringify(event));
}

export function SampleEventDialog({
  open,
  onClose,
  value,
  onChange,
}: {
  open: boolean;
  onClose: () => void;
  value: Record<string, unknown>;
  onChange: (event: Record<string, unknown>) => void;
}) {
  const [text, setText] = useState(() => JSON.stringify(value, null, 2));
  const [error, setError] = useState<string | null>(null);
  const apply = () => {
    try {
      const parsed: unknown = JSON.parse(text);
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
        setError('The event must be a JSON object.');
        return;
      }
      onChange(parsed as Record<string, unknown>);
      setError(null);
      onClose();
    } catch (reason) {
      setError(reason instanceof Error ? reason.message : String(reason));
    }
  };
  return (
    <Dialog
      open={open}
      onClose={onClose}
      title="Sample event"
      size="lg"
      description="A payment event like the ones your shop sends. Its fields are offered when you type $context.event… in a condition or a parameter. Kept in this browser."
      footer={
        <>
          <Button
            variant="ghost"
            onClick={() => {
              setText(JSON.stringify({ company_id: value.company_id, ...DEFAULT_SAMPLE_EVENT }, null, 2));
              setError(null);
            }}
          >
            Reset to the example
          </Button>
          <Button variant="primary" onClick={apply}>
            Use this event
          </Button>
        </>
      }
    >
      <textarea className="input code-area" aria-label="Sample event JSON" rows={18} spellCheck={false} value={text} onChange={(event) => setText(event.target.value)} />
      {error ? (
        <Callout tone="danger" title="Not valid JSON">
          {error}
        </Callout>
      ) : null}
    </Dialog>
  );
}
