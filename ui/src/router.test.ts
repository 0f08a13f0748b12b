import { describe, expect, it } from 'vitest';
import { parseRoute, routeHref, type Route } from './router';

describe('routes', () => {
  it('round-trips every screen through the hash', () => {
    const routes: Route[] = [
      { name: 'companies' },
      { name: 'editor', companyId: 'acme books' },
      { name: 'runs', companyId: 'acme', query: {} },
      { name: 'runs', companyId: 'acme', query: { status: 'failed', type: 'product', range: 'custom', from: '2026-11-01T00:00', to: '2026-11-02T00:00' } },
      { name: 'run', companyId: 'acme', runId: 'run_01a2' },
    ];
    for (const route of routes) expect(parseRoute(routeHref(route))).toEqual(route);
  });

  it('reads what people type, and falls back to the companies', () => {
    expect(parseRoute('#/companies/acme/')).toEqual({ name: 'editor', companyId: 'acme' });
    expect(parseRoute('#/companies/acme/runs?status=failed&unknown=1')).toEqual({ name: 'runs', companyId: 'acme', query: { status: 'failed' } });
    expect(parseRoute('')).toEqual({ name: 'companies' });
    expect(parseRoute('#/elsewhere')).toEqual({ name: 'companies' });
  });
});
