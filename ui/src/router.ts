/**
 * Hash routes, so the UI works when served from `/ui/` by any server and a
 * reload keeps the place: `#/companies`, `#/companies/<id>`.
 */
import { useEffect, useState } from 'react';

export type Route = { name: 'companies' } | { name: 'editor'; companyId: string };

export function parseRoute(hash: string): Route {
  const match = /^#\/companies\/([^/]+)\/?$/.exec(hash);
  if (match?.[1]) return { name: 'editor', companyId: decodeURIComponent(match[1]) };
  return { name: 'companies' };
}

export function routeHref(route: Route): string {
  return route.name === 'editor' ? `#/companies/${encodeURIComponent(route.companyId)}` : '#/companies';
}

export function navigate(route: Route): void {
  window.location.hash = routeHref(route);
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
