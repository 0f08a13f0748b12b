/** The shell: sign-in, then the admin's company picker, or one company's flow editor, runs and run pages. */
import { useCallback, useEffect, useMemo, useState } from 'react';
import { MoneyFlowClient } from './api/client';
import { clearSession, loadSession, saveSession, type Session } from './api/session';
import type { Company } from './api/types';
import { IconActivity, IconChevronRight, IconFlow, IconLogo, IconLogout } from './components/icons';
import { Badge, Button } from './components/ui';
import { forgetDrafts } from './editor/drafts';
import { EditorScreen } from './editor/Editor';
import { navigate, routeCompany, routeHref, useRoute, type Route } from './router';
import { RunPage } from './runs/RunPage';
import { RunsPage } from './runs/RunsPage';
import { CompanyPicker } from './screens/CompanyPicker';
import { SignIn } from './screens/SignIn';

export function App() {
  const [session, setSession] = useState<Session | null>(() => loadSession());
  const route = useRoute();
  const client = useMemo(() => (session ? new MoneyFlowClient(session.token) : null), [session]);

  const signOut = useCallback(() => {
    clearSession();
    forgetDrafts();
    setSession(null);
    navigate({ name: 'companies' });
  }, []);

  // A company key acts for its company only: go straight to its flow.
  useEffect(() => {
    if (session?.principal.kind === 'company' && routeCompany(route) !== session.principal.companyId) {
      navigate({ name: 'editor', companyId: session.principal.companyId }, { replace: true });
    }
  }, [session, route]);

  if (!session || !client) {
    return (
      <SignIn
        onSignedIn={(next) => {
          saveSession(next);
          setSession(next);
          if (next.principal.kind === 'admin' && route.name === 'companies') navigate({ name: 'companies' });
        }}
      />
    );
  }

  const isAdmin = session.principal.kind === 'admin';
  const companyId = routeCompany(route);

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
        {companyId ? <CompanyTabs companyId={companyId} route={route} /> : null}
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
        {route.name === 'editor' ? (
          <EditorScreen key={route.companyId} client={client} companyId={route.companyId} onSignOut={signOut} />
        ) : route.name === 'runs' ? (
          <RunsPage key={route.companyId} client={client} companyId={route.companyId} query={route.query} onSignOut={signOut} />
        ) : route.name === 'run' ? (
          <RunPage key={`${route.companyId}/${route.runId}`} client={client} companyId={route.companyId} runId={route.runId} onSignOut={signOut} />
        ) : (
          <CompanyPicker client={client} onPick={(company: Company) => navigate({ name: 'editor', companyId: company.id })} />
        )}
      </div>
    </div>
  );
}

/** The company's sections: its flow and its runs. */
function CompanyTabs({ companyId, route }: { companyId: string; route: Route }) {
  const onRuns = route.name === 'runs' || route.name === 'run';
  return (
    <nav className="company-tabs" aria-label="Company sections">
      <a href={routeHref({ name: 'editor', companyId })} className="company-tab" aria-current={route.name === 'editor' ? 'page' : undefined}>
        <IconFlow size={14} />
        Flow
      </a>
      <a href={routeHref({ name: 'runs', companyId, query: {} })} className="company-tab" aria-current={onRuns ? 'page' : undefined}>
        <IconActivity size={14} />
        Runs
      </a>
    </nav>
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
