/** The admin's companies: pick one to edit its flow, or create one. */
import { useEffect, useMemo, useState } from 'react';
import { ApiError, errorMessage, type MoneyFlowClient } from '../api/client';
import type { Company } from '../api/types';
import { IconArrowRight, IconBuilding, IconPlus, IconSearch } from '../components/icons';
import { Button, Callout, EmptyState, Field, formatDate, Spinner } from '../components/ui';
import { NODE_ID_PATTERN } from '../model/rules';

type State = { status: 'loading' } | { status: 'error'; message: string } | { status: 'ready'; companies: Company[] };

export function CompanyPicker({ client, onPick }: { client: MoneyFlowClient; onPick: (company: Company) => void }) {
  const [state, setState] = useState<State>({ status: 'loading' });
  const [attempt, setAttempt] = useState(0);
  const [query, setQuery] = useState('');
  const [creating, setCreating] = useState(false);

  useEffect(() => {
    const controller = new AbortController();
    client.listCompanies(controller.signal).then(
      (companies) => setState({ status: 'ready', companies }),
      (error: unknown) => {
        if (!controller.signal.aborted) setState({ status: 'error', message: errorMessage(error) });
      },
    );
    return () => controller.abort();
  }, [client, attempt]);

  const companies = useMemo(() => {
    if (state.status !== 'ready') return [];
    const words = query.trim().toLowerCase();
    const sorted = [...state.companies].sort((a, b) => a.name.localeCompare(b.name));
    return words ? sorted.filter((company) => `${company.name} ${company.id}`.toLowerCase().includes(words)) : sorted;
  }, [state, query]);

  return (
    <div className="page">
      <div className="page-header">
        <div>
          <h1>Companies</h1>
          <p className="muted">Each company has its own payment flow, API keys and runs. Pick one to open its flow.</p>
        </div>
        <Button variant="primary" icon={<IconPlus size={16} />} onClick={() => setCreating(true)}>
          New company
        </Button>
      </div>

      {creating ? (
        <CreateCompany
          client={client}
          onCancel={() => setCreating(false)}
          onCreated={(company) => {
            setCreating(false);
            onPick(company);
          }}
        />
      ) : null}

      {state.status === 'loading' ? (
        <div className="centered">
          <Spinner size={24} label="Loading companies" />
        </div>
      ) : state.status === 'error' ? (
        <Callout
          tone="danger"
          title="Could not load the companies"
          action={
            <Button
              onClick={() => {
                setState({ status: 'loading' });
                setAttempt((n) => n + 1);
              }}
            >
              Try again
            </Button>
          }
        >
          {state.message}
        </Callout>
      ) : state.companies.length === 0 ? (
        <EmptyState
          icon={<IconBuilding size={24} />}
          title="No company yet"
          action={
            <Button variant="primary" icon={<IconPlus size={16} />} onClick={() => setCreating(true)}>
              Create the first company
            </Button>
          }
        >
          A company is a shop or a business unit whose payments MoneyFlow handles.
        </EmptyState>
      ) : (
        <section className="card list-card" aria-label="Company list">
          <div className="list-toolbar">
            <label className="search-input">
              <IconSearch size={14} />
              <input type="search" aria-label="Search companies" placeholder="Search by name or id" value={query} onChange={(event) => setQuery(event.target.value)} />
            </label>
            <span className="muted small">
              {companies.length} of {state.companies.length}
            </span>
          </div>
          {companies.length === 0 ? (
            <p className="list-empty">No company matches “{query}”.</p>
          ) : (
            <ul className="company-list">
              {companies.map((company) => (
                <li key={company.id}>
                  <button type="button" className="company-row" onClick={() => onPick(company)} aria-label={`Open ${company.name} (${company.id})`}>
                    <span className="company-avatar" aria-hidden="true">
                      {initials(company.name)}
                    </span>
                    <span className="company-names">
                      <span className="company-name">{company.name}</span>
                      <span className="company-id mono">{company.id}</span>
                    </span>
                    <span className="company-date muted small">{company.created_at ? `Created ${formatDate(company.created_at)}` : ''}</span>
                    <IconArrowRight size={16} className="company-arrow" />
                  </button>
                </li>
              ))}
            </ul>
          )}
        </section>
      )}
    </div>
  );
}

function initials(name: string): string {
  const words = name.trim().split(/\s+/).filter(Boolean);
  return ((words[0]?.[0] ?? '?') + (words[1]?.[0] ?? '')).toUpperCase();
}

function CreateCompany({ client, onCancel, onCreated }: { client: MoneyFlowClient; onCancel: () => void; onCreated: (company: Company) => void }) {
  const [name, setName] = useState('');
  const [id, setId] = useState('');
  const [busy, setBusy] = useState(false);
  const [errors, setErrors] = useState<{ name?: string; id?: string; general?: string }>({});
  const idInvalid = id !== '' && (!NODE_ID_PATTERN.test(id) || id.length > 128);

  const submit = async () => {
    if (!name.trim()) {
      setErrors({ name: 'Give the company a name.' });
      return;
    }
    if (idInvalid) return;
    setBusy(true);
    setErrors({});
    try {
      const company = await client.createCompany(id ? { name: name.trim(), id } : { name: name.trim() });
      onCreated(company);
    } catch (error) {
      if (error instanceof ApiError && error.status === 409) setErrors({ id: error.message });
      else if (error instanceof ApiError && error.fieldProblems.length > 0) {
        const next: { name?: string; id?: string; general?: string } = {};
        for (const problem of error.fieldProblems) {
          if (problem.path === 'name') next.name = problem.message;
          else if (problem.path === 'id') next.id = problem.message;
          else next.general = problem.message;
        }
        setErrors(next);
      } else setErrors({ general: errorMessage(error) });
    } finally {
      setBusy(false);
    }
  };

  return (
    <form
      className="card create-card"
      aria-label="New company"
      onSubmit={(event) => {
        event.preventDefault();
        void submit();
      }}
    >
      <h2>New company</h2>
      <div className="grid-2">
        <Field label="Name" htmlFor="company-name" required error={errors.name}>
          <input id="company-name" className="input" autoFocus value={name} onChange={(event) => setName(event.target.value)} placeholder="Acme Books" maxLength={200} />
        </Field>
        <Field label="Id" htmlFor="company-new-id" hint="Optional: letters, digits, - and _. A random id otherwise." error={idInvalid ? 'Use letters, digits, - and _ only (up to 128).' : errors.id}>
          <input id="company-new-id" className="input mono" value={id} onChange={(event) => setId(event.target.value)} placeholder="acme-books" autoComplete="off" />
        </Field>
      </div>
      {errors.general ? <Callout tone="danger">{errors.general}</Callout> : null}
      <div className="row end">
        <Button variant="ghost" onClick={onCancel}>
          Cancel
        </Button>
        <Button type="submit" variant="primary" busy={busy} disabled={busy}>
          Create company
        </Button>
      </div>
    </form>
  );
}
