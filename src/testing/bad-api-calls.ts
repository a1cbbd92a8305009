// Malformed API calls for the reliability suite (bad-inputs.ts): ids, bodies and queries no client should send.
import { randomUUID } from 'node:crypto';
import type { Rng } from '../imaging/random.js';

const API = '/api/v1';

/** One request of the bad-input suite, sent as it is. */
export interface BadRequest {
  kind: string;
  /** What it is, for a failure message. */
  label: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
}

export function apiCalls(rng: Rng): BadRequest[] {
  const out: BadRequest[] = [];
  const add = (label: string, method: string, path: string, body?: string, type = 'application/json') =>
    out.push({
      kind: 'bad API call',
      label,
      method,
      path,
      headers: body === undefined ? {} : { 'content-type': type },
      body: body === undefined ? undefined : Buffer.from(body),
    });
  const ids = [
    'not-a-uuid',
    '..%2F..%2Fetc%2Fpasswd',
    '%00',
    "1'%20OR%20'1'='1",
    'x'.repeat(5000),
    randomUUID(),
    '..',
    '%2e%2e',
  ];
  for (const id of ids) {
    add(`GET case ${id.slice(0, 30)}`, 'GET', `${API}/cases/${id}`);
    add(`image of ${id.slice(0, 30)}`, 'GET', `${API}/cases/${id}/image`);
    add(`heat map of ${id.slice(0, 30)}`, 'GET', `${API}/cases/${id}/heatmap.png`);
    add(`DELETE ${id.slice(0, 30)}`, 'DELETE', `${API}/cases/${id}`);
    add(
      `review ${id.slice(0, 30)}`,
      'PATCH',
      `${API}/cases/${id}`,
      '{"reviewLabel":"neutrophil","reviewer":"r"}',
    );
    add(`crop -1 of ${id.slice(0, 30)}`, 'GET', `${API}/cases/${id}/cells/-1/crop.png`);
  }
  const bodies = [
    '',
    '{',
    'null',
    '[]',
    '"x"',
    '{"reviewLabel":1,"reviewer":2}',
    '{"reviewLabel":"not_a_class","reviewer":"r"}',
    '{"reviewLabel":"neutrophil"}',
    `{"reviewLabel":"neutrophil","reviewer":"${'r'.repeat(100_000)}"}`,
    '{"__proto__":{"admin":true},"reviewLabel":"neutrophil","reviewer":"r"}',
    '{"constructor":{"prototype":{"x":1}}}',
    '\u0000\u0001\u0002',
  ];
  for (const b of bodies) {
    add(`review body ${b.slice(0, 30)}`, 'PATCH', `${API}/cases/${randomUUID()}`, b);
    add(`cell review body ${b.slice(0, 30)}`, 'POST', `${API}/cases/${randomUUID()}/cells/0/review`, b);
    add(`specimen body ${b.slice(0, 30)}`, 'POST', `${API}/specimens`, b);
    add(`sign body ${b.slice(0, 30)}`, 'POST', `${API}/specimens/NOPE/sign`, b);
    add(`specimen edit body ${b.slice(0, 30)}`, 'PATCH', `${API}/specimens/NOPE`, b);
    add(`specimen delete body ${b.slice(0, 30)}`, 'DELETE', `${API}/specimens/NOPE`, b);
  }
  add('review as text/plain', 'PATCH', `${API}/cases/${randomUUID()}`, 'reviewLabel=x', 'text/plain');
  add('review as XML', 'PATCH', `${API}/cases/${randomUUID()}`, '<a/>', 'application/xml');
  const queries = [
    'limit=-1',
    'limit=1e9',
    'limit=abc',
    'offset=-5',
    'offset=1e30',
    'label=%00',
    'reviewed=maybe',
    'needsReview=2',
    'sort=evil',
    'x=1',
    'limit=1&limit=2',
    `label=${'l'.repeat(10_000)}`,
  ];
  for (const q of queries) {
    add(`cases?${q.slice(0, 30)}`, 'GET', `${API}/cases?${q}`);
    add(`cases.csv?${q.slice(0, 30)}`, 'GET', `${API}/cases.csv?${q}`);
    add(`specimens?${q.slice(0, 30)}`, 'GET', `${API}/specimens?${q}`);
  }
  for (const s of ['', ' ', 'x'.repeat(300), '../etc', '%00', 'NOPE']) {
    add(`specimen ${s.slice(0, 20)}`, 'GET', `${API}/specimens/${encodeURIComponent(s)}`);
    add(
      `report of ${s.slice(0, 20)}`,
      'GET',
      `${API}/specimens/${encodeURIComponent(s)}/report.pdf?revision=abc`,
    );
    add(`cells.csv of ${s.slice(0, 20)}`, 'GET', `${API}/specimens/${encodeURIComponent(s)}/cells.csv`);
    add(`restore ${s.slice(0, 20)}`, 'POST', `${API}/specimens/${encodeURIComponent(s)}/restore`);
  }
  for (const path of [
    '/%2e%2e/%2e%2e/etc/passwd',
    '/..%2f..%2fpackage.json',
    '/api/v1/../../package.json',
    '/assets/..%2f..%2f..%2fpackage.json',
    `/${'a/'.repeat(2000)}`,
    '/api/v1/predict',
  ])
    add(`GET ${path.slice(0, 40)}`, 'GET', path);
  for (const m of ['PUT', 'OPTIONS', 'TRACE', 'PROPFIND']) add(`${m} cases`, m, `${API}/cases`);
  while (out.length < 150) {
    const n = Math.floor(rng() * 1e6);
    add(`random id ${n}`, 'GET', `${API}/cases/${n.toString(16)}-${randomUUID().slice(9)}`);
  }
  return out;
}
