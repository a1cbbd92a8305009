/** The paging of CaseStore.iterate, shared by both stores. */
import { rowToCase, type CaseRow } from './sqlite-rows.js';
import type { StoredCase } from './types.js';

/** Rows per page of iterate(). */
export const ITERATE_PAGE = 200;

/**
 * The cases of `ids` (a snapshot of the matching ids, in order), their rows read a page at a time and the
 * event loop given a turn between pages: a large export neither holds a cursor open across awaits nor
 * stalls other requests (SQLite answers synchronously, so without the turn it would). A case deleted since
 * the snapshot is skipped.
 */
export async function* casesInPages(
  ids: string[],
  readPage: (page: string[]) => CaseRow[] | Promise<CaseRow[]>,
): AsyncIterable<StoredCase> {
  for (let i = 0; i < ids.length; i += ITERATE_PAGE) {
    const page = ids.slice(i, i + ITERATE_PAGE);
    const byId = new Map((await readPage(page)).map((r) => [r.id, r]));
    for (const id of page) {
      const row = byId.get(id);
      if (row) yield rowToCase(row);
    }
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}
