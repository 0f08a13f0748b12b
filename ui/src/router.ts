/**
 * Hash routes, so the UI works when served from `/ui/` by any server and a
 * reload keeps the place: `#/companies`, `#/companies/<id>` (its flow),
 * `#/companies/<id>/runs?status=failed` (its runs, filters in the query)
 * and `#/companies/<id>/runs/<run_id>`.
 */
import { useEffect, useState } from 'react';

export interface RunsQuery {
  status?: string;
  type?: string;
  /** A preset (`1h`…) or `custom`. */
  range?: string;
  /** `datetime-local` values of a custom range. */
  from?: string;
  to?: string;
}

export type Route =
  | { name: 'companies' }
  | { name: 'editor'; companyId: string }
  | { name: 'runs'; companyId: string; query: RunsQuery }
  | { name: 'run'; companyId: string; runId: string };

const QUERY_KEYS = ['status', 'type', 'range', 'from', 'to'] as const;

export function parseRoute(hash: string): Route {
  const [path = '', search = ''] = hash.split('?', 2);
  const match = /^#\/companies\/([^/]+)(?:\/(runs)(?:\/([^/]+))?)?\/?$/.exec(path);
  const companyId = match?.[1] ? decodeURIComponent(match[1]) : undefined;
  if (!companyId) return { name: 'companies' };
  if (match?.[3]) return { name: 'run', companyId, runId: decodeURIComponent(match[3]) };
  if (match?.[2]) {
    const params = new URLSearchParams(search);
    const query: RunsQuery = {};
    for (const key of QUERY_KEYS) {
      const value = params.get(key);
      if (value) query[key] = value;
    }
    return { name: 'runs', companyId, query };
  }
  return { name: 'editor', companyId };
}

export function routeHref(route: Route): string {
  switch (route.name) {
    case 'companies':
      return '#/companies';
    case 'editor':
      return `#/companies/${encodeURIComponent(route.companyId)}`;
    case 'runs': {
      const params = new URLSearchParams();
      for (const key of QUERY_KEYS) {
        const value = route.query[key];
        if (value) params.set(key, value);
      }
      const search = params.toString();
      return `#/companies/${encodeURIComponent(route.companyId)}/runs${search ? `?${search}` : ''}`;
    }
    case 'run':
      return `#/companies/${encodeURIComponent(route.companyId)}/runs/${encodeURIComponent(route.runId)}`;
  }
}

export function navigate(route: Route, options: { replace?: boolean } = {}): void {
  const href = routeHref(route);
  if (options.replace) {
    window.history.replaceState(null, '', href);
    window.dispatchEvent(new HashChangeEvent('hashchange'));
  } else {
    window.location.hash = href;
  }
}

/** The company a route is about, if any. */
export function routeCompany(route: Route): string | null {
  return route.name === 'companies' ? null : route.companyId;
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(window.location.hash));
  useEffect(() => {
    const onChange = () => setRoute(parseRoute(window.location.hash));
    window.addEventListener('hashchange', onChange);
    return () => window.removeEventListener('hashchange', onChange);
  }, []);
  return route;
}
