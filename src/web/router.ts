/** Hash routes, so the UI works from any static mount without server-side fallbacks. */

export type Route =
  | { name: 'analyse'; query: URLSearchParams }
  | { name: 'history'; query: URLSearchParams }
  | { name: 'case'; id: string }
  | { name: 'practice' }
  | { name: 'about' }
  | { name: 'specimens' }
  | { name: 'specimen'; id: string }
  | { name: 'admin' }
  | { name: 'login' }
  | { name: 'setup'; query: URLSearchParams }
  | { name: 'audit' }
  | { name: 'account' }
  | { name: 'notFound'; path: string };

export function parseHash(hash: string): Route {
  const raw = hash.replace(/^#/, '') || '/';
  const [path, search = ''] = raw.split('?', 2);
  const query = new URLSearchParams(search);
  if (path === '/' || path === '') return { name: 'analyse', query };
  if (path === '/history') return { name: 'history', query };
  if (path === '/practice') return { name: 'practice' };
  if (path === '/about') return { name: 'about' };
  if (path === '/specimens') return { name: 'specimens' };
  if (path === '/admin') return { name: 'admin' };
  if (path === '/login') return { name: 'login' };
  if (path === '/setup') return { name: 'setup', query };
  if (path === '/audit') return { name: 'audit' };
  if (path === '/account') return { name: 'account' };
  const specimenMatch = /^\/specimens\/(.+)$/.exec(path);
  if (specimenMatch) return { name: 'specimen', id: decodeURIComponent(specimenMatch[1]) };
  const caseMatch = /^\/cases\/([^/]+)$/.exec(path);
  if (caseMatch) return { name: 'case', id: decodeURIComponent(caseMatch[1]) };
  return { name: 'notFound', path };
}

export function historyHref(params: Record<string, string | number | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== '' && !(k === 'offset' && Number(v) === 0)) q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `#/history?${s}` : '#/history';
}

export function caseHref(id: string): string {
  return `#/cases/${encodeURIComponent(id)}`;
}

export function specimenHref(id: string): string {
  return `#/specimens/${encodeURIComponent(id)}`;
}
