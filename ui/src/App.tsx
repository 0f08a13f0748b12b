/** The shell: sign-in, then the admin's company picker or the editor of one company. */
import { useCallback, useEffect, useMemo, useState } from 'react';
import { MoneyFlowClient } from './api/client';
import { clearSession, loadSession, saveSession, type Session } from './api/session';
import type { Company } from './api/types';
import { IconChevronRight, IconLogo, IconLogout } from './components/icons';
import { Badge, Button } from './components/ui';
import { EditorScreen } from './editor/Editor';
import { navigate, routeHref, useRoute } from './router';
import { CompanyPicker } from './screens/CompanyPicker';
import { SignIn } from './screens/SignIn';

export function App() {
  const [session, setSession] = useState<Session | null>(() => loadSession());
  const route = useRoute();
  const client = useMemo(() => (session ? new MoneyFlowClient(session.token) : null), [session]);

  const signOut = useCallback(() => {
    clearSession();
    setSession(null);
    navigate({ name: 'companies' });
  }, []);

  // A company key acts for its company only: go straight to its flow.
  useEffect(() => {
    if (session?.principal.kind === 'company' && (route.name !== 'editor' || route.companyId !== session.principal.companyId)) {
      navigate({ name: 'editor', companyId: session.principal.companyId });
    }
  }, [session, route]);

  if (!session || !client) {
    return (
      <SignIn
        onSignedIn={(next) => {
          saveSession(next);
          setSession(next);
          if (next.principal.kind === 'admin' && route.name !== 'editor') navigate({ name: 'companies' });
        }}
      />
    );
  }

  const isAdmin = session.principal.kind === 'admin';
  const companyId = route.name === 'editor' ? route.companyId : null;

  return (
    <div className="app">
      <header className="topbar">
        <a className="brand" href={isAdmin ? routeHref({ name: 'companies' }) : undefined} aria-label="MoneyFlow home">
          <span className="brand-mark">
            <IconLogo size={18} />
          </span>
          <span className="brand-name">MoneyFlow</span>
        </a>
        <nav className="breadcrumbs" aria-label="Breadcrumbs">
          {isAdmin ? (
            <a href={routeHref({ name: 'companies' })} aria-current={companyId ? undefined : 'page'}>
              Companies
            </a>
          ) : null}
          {companyId ? (
            <>
              {isAdmin ? <IconChevronRight size={14} className="breadcrumb-sep" /> : null}
              <CompanyName client={client} companyId={companyId} />
            </>
          ) : null}
        </nav>
        <div className="topbar-end">
          <Badge tone={isAdmin ? 'primary' : 'neutral'} title={isAdmin ? 'Signed in with the admin token' : 'Signed in with a company API key'}>
            {isAdmin ? 'Admin' : 'Company key'}
          </Badge>
          <Button variant="ghost" size="sm" icon={<IconLogout size={14} />} onClick={signOut}>
            Sign out
          </Button>
        </div>
      </header>
      <div className="app-body">
        {companyId ? (
          <EditorScreen key={companyId} client={client} companyId={companyId} onSignOut={signOut} />
        ) : (
          <CompanyPicker client={client} onPick={(company: Company) => navigate({ name: 'editor', companyId: company.id })} />
        )}
      </div>
    </div>
  );
}

function CompanyName({ client, companyId }: { client: MoneyFlowClient; companyId: string }) {
  const [name, setName] = useState<string | null>(null);
  useEffect(() => {
    const controller = new AbortController();
    client.getCompany(companyId, controller.signal).then(
      (company) => setName(company.name),
      () => undefined,
    );
    return () => controller.abort();
  }, [client, companyId]);
  return (
    <span className="breadcrumb-current" aria-current="page">
      {name ?? companyId}
      {name && name !== companyId ? <span className="mono muted small"> {companyId}</span> : null}
    </span>
  );
}
