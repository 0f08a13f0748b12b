/** Sign in with the admin token or a company API key; the credential is checked against the API before it is kept. */
import { useState } from 'react';
import { ApiError, errorMessage, MoneyFlowClient, NetworkError } from '../api/client';
import type { Session } from '../api/session';
import { IconLogo } from '../components/icons';
import { Button, Callout, Field } from '../components/ui';

export function SignIn({ onSignedIn, notice }: { onSignedIn: (session: Session) => void; notice?: string }) {
  const [token, setToken] = useState('');
  const [companyId, setCompanyId] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const isCompanyKey = token.trim().startsWith('mfk_');

  const submit = async () => {
    const trimmed = token.trim();
    if (!trimmed) {
      setError('Paste the admin token or a company API key.');
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const client = new MoneyFlowClient(trimmed);
      const principal = await client.whoAmI(isCompanyKey ? companyId.trim() : undefined);
      onSignedIn({ token: trimmed, principal });
    } catch (reason) {
      if (reason instanceof ApiError && reason.status === 401) setError('The server does not know this token: check it was copied whole, and that it was not revoked.');
      else if (reason instanceof NetworkError) setError(`${reason.message}. Is \`moneyflow up\` running?`);
      else setError(errorMessage(reason));
    } finally {
      setBusy(false);
    }
  };

  return (
    <div className="auth-screen">
      <div className="auth-card">
        <div className="brand brand-large">
          <span className="brand-mark">
            <IconLogo size={22} />
          </span>
          <span className="brand-name">MoneyFlow</span>
        </div>
        <h1>Sign in to the canvas</h1>
        <p className="muted">Design what happens after each payment: invoices, shipments, royalties, notifications.</p>
        {notice ? <Callout tone="info">{notice}</Callout> : null}
        <form
          className="stack"
          onSubmit={(event) => {
            event.preventDefault();
            void submit();
          }}
        >
          <Field
            label="Admin token or company API key"
            htmlFor="token"
            hint={
              <>
                <code className="mono">moneyflow up</code> prints the admin token on first start (or set <code className="mono">MONEYFLOW_ADMIN_TOKEN</code>). Company keys start with{' '}
                <code className="mono">mfk_</code>.
              </>
            }
          >
            <input
              id="token"
              className="input mono"
              type="password"
              autoComplete="off"
              spellCheck={false}
              autoFocus
              value={token}
              onChange={(event) => setToken(event.target.value)}
              placeholder="Paste the token"
            />
          </Field>
          {isCompanyKey ? (
            <Field label="Company id" htmlFor="company-id" hint="The company this key belongs to." required>
              <input id="company-id" className="input mono" value={companyId} onChange={(event) => setCompanyId(event.target.value)} placeholder="e.g. demo" autoComplete="off" />
            </Field>
          ) : null}
          {error ? <Callout tone="danger">{error}</Callout> : null}
          <Button type="submit" variant="primary" busy={busy} disabled={busy} className="btn-block">
            Sign in
          </Button>
          <p className="fine-print">The token stays in this browser tab only, and is forgotten when you close it.</p>
        </form>
      </div>
    </div>
  );
}
