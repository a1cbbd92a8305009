/**
 * Reviewed cells for adaptation tests: the bundled teaching images (PBC, labelled by experts) predicted by a
 * running server and each one's cell reviewed with its expert label, as a reviewer would in the app.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { multipart } from './server.js';

const TEACHING = fileURLToPath(new URL('../../teaching/', import.meta.url));

export interface TeachingCell {
  file: string;
  label: string;
  bytes: Buffer;
}

/** `perClass` teaching images of each class (all: 15), in the manifest's order. */
export function teachingCells(perClass = 15): TeachingCell[] {
  const manifest = JSON.parse(readFileSync(join(TEACHING, 'manifest.json'), 'utf8')) as {
    cells: { file: string; label: string }[];
  };
  const taken = new Map<string, number>();
  return manifest.cells.flatMap((c) => {
    const n = taken.get(c.label) ?? 0;
    if (n >= perClass) return [];
    taken.set(c.label, n + 1);
    return [{ file: c.file, label: c.label, bytes: readFileSync(join(TEACHING, c.file)) }];
  });
}

/** Sends one HTTP-like request: app.inject for an in-process app, fetch for a replica in another process. */
export type Send = (req: {
  method: 'GET' | 'POST';
  url: string;
  payload?: Buffer | string;
  headers?: Record<string, string>;
}) => Promise<{ statusCode: number; json: () => unknown }>;

/** Predicts the cells through the API in batches of `batch` images; returns the cases, in the cells' order. */
export async function uploadCells(
  send: Send,
  cells: TeachingCell[],
  batch = 20,
): Promise<{ id: string; cells: unknown[] }[]> {
  const cases: { id: string; cells: unknown[] }[] = [];
  for (let i = 0; i < cells.length; i += batch) {
    const body = await multipart(
      cells.slice(i, i + batch).map((c) => ({ name: c.file.split('/').pop() as string, bytes: c.bytes })),
    );
    const res = await send({ method: 'POST', url: '/api/v1/predict', ...body });
    if (res.statusCode !== 200) throw new Error(`predict answered ${res.statusCode}`);
    cases.push(...(res.json() as { cases: { id: string; cells: unknown[] }[] }).cases);
  }
  return cases;
}

/**
 * Predicts the cells in batches and reviews the one cell of every image where exactly one was found; returns
 * the case ids and how many cells were reviewed.
 */
export async function seedReviewedCells(
  send: Send,
  cells: TeachingCell[],
  batch = 20,
): Promise<{ caseIds: string[]; reviewed: number }> {
  const cases = await uploadCells(send, cells, batch);
  let reviewed = 0;
  for (const [j, c] of cases.entries()) {
    if (c.cells.length !== 1) continue;
    const r = await send({
      method: 'POST',
      url: `/api/v1/cases/${c.id}/cells/0/review`,
      payload: JSON.stringify({ reviewLabel: cells[j].label, reviewer: 'Dr Test' }),
      headers: { 'content-type': 'application/json' },
    });
    if (r.statusCode !== 200) throw new Error(`review answered ${r.statusCode}`);
    reviewed++;
  }
  return { caseIds: cases.map((c) => c.id), reviewed };
}
