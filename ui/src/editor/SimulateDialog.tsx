/**
 * Simulate the draft against the sample event: every node's state, the
 * reasons of conditions and the resolved parameters, with no side effects.
 * Servers without `POST /payment-rules/{company_id}/simulate` get a clear
 * "not available yet" state.
 */
import { useEffect, useState } from 'react';
import { errorMessage, NotAvailableError, type MoneyFlowClient } from '../api/client';
import type { Simulation } from '../api/types';
import { Badge, Callout, Dialog, Spinner } from '../components/ui';
import type { RuleNode } from '../model/rules';

type State = { status: 'loading' } | { status: 'done'; result: Simulation } | { status: 'unavailable'; endpoint: string } | { status: 'error'; message: string };

export function SimulateDialog({
  open,
  onClose,
  client,
  companyId,
  rules,
  event,
}: {
  open: boolean;
  onClose: () => void;
  client: MoneyFlowClient;
  companyId: string;
  rules: RuleNode[];
  event: Record<string, unknown>;
}) {
  const [state, setState] = useState<State>({ status: 'loading' });
  useEffect(() => {
    if (!open) return;
    const controller = new AbortController();
    client.simulate(companyId, { rules, event }, controller.signal).then(
      (result) => setState({ status: 'done', result }),
      (error: unknown) => {
        if (controller.signal.aborted) return;
        if (error instanceof NotAvailableError) setState({ status: 'unavailable', endpoint: error.endpoint });
        else setState({ status: 'error', message: errorMessage(error) });
      },
    );
    return () => {
      controller.abort();
      setState({ status: 'loading' });
    };
  }, [open, client, companyId, rules, event]);

  return (
    <Dialog open={open} onClose={onClose} title="Simulate with the sample event" size="lg" description="Runs the draft in the server’s evaluator, without creating documents or runs.">
      {state.status === 'loading' ? (
        <div className="centered">
          <Spinner label="Simulating" />
        </div>
      ) : state.status === 'unavailable' ? (
        <Callout tone="info" title="Not available on this server yet">
          {state.endpoint} is not on this MoneyFlow server. Update the server to simulate flows here; until then, the editor still validates every change.
        </Callout>
      ) : state.status === 'error' ? (
        <Callout tone="danger" title="The simulation failed">
          {state.message}
        </Callout>
      ) : (
        <ul className="simulation-list">
          {state.result.nodes.map((node) => (
            <li key={node.node_id}>
              <span className="mono">{node.node_id}</span>
              <Badge tone={node.state === 'success' ? 'success' : node.state === 'failure' ? 'danger' : 'neutral'}>{node.state}</Badge>
              {node.reasons && node.reasons.length > 0 ? <span className="simulation-reasons">{node.reasons.map((reason) => (typeof reason === 'string' ? reason : JSON.stringify(reason))).join('; ')}</span> : null}
            </li>
          ))}
        </ul>
      )}
    </Dialog>
  );
}
