/**
 * `predict --server URL [--specimen ID]`: the images are analysed and stored by a running HematoVision server
 * (POST /api/v1/predict), into a specimen when one is named, whose differential is printed afterwards.
 * Through the server, not in this process, because a specimen is the server's record: its count grows with
 * every upload, from any client, and the lab reviews and signs it there.
 */
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import type { CaseJson, FileErrorJson, PredictResponseJson, SpecimenDetailJson } from '../../api/index.js';
import { API_BASE, DEFAULT_MAX_FILES } from '../../api/constants.js';
import { HematoError } from '../../errors.js';
import type { Io } from '../io.js';
import { pct, progressBar } from '../progress.js';

export interface RemoteOptions {
  server: string;
  specimen?: string;
  tta?: boolean;
  json?: boolean;
}

function apiUrl(server: string, path: string): string {
  let base: URL;
  try {
    base = new URL(server);
  } catch {
    throw new HematoError(
      `--server must be a URL such as http://localhost:3000, not "${server}".`,
      'bad_option',
    );
  }
  return new URL(`${base.pathname.replace(/\/$/, '')}${API_BASE}${path}`, base).toString();
}

async function call<T>(server: string, path: string, init?: RequestInit): Promise<T> {
  let res: Response;
  try {
    // A server with accounts on wants an API token (`hematovision tokens create <user>`).
    const token = process.env.HEMATOVISION_TOKEN;
    const headers = { accept: 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) };
    res = await fetch(apiUrl(server, path), { headers, ...init });
  } catch (err) {
    throw new HematoError(
      `No HematoVision server answers at ${server} (${err instanceof Error ? ((err.cause as Error | undefined)?.message ?? err.message) : String(err)}).`,
      'server_unreachable',
    );
  }
  const text = await res.text();
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }
  if (!res.ok) {
    let message = (body as { message?: string } | undefined)?.message ?? `${res.status} ${res.statusText}`;
    if (res.status === 401)
      message += ' Set HEMATOVISION_TOKEN to an API token (hematovision tokens create <user> on the server).';
    throw new HematoError(
      `The server refused: ${message}`,
      (body as { error?: string })?.error ?? 'http_error',
    );
  }
  return body as T;
}

const isError = (c: CaseJson | FileErrorJson): c is FileErrorJson => 'error' in c && !('id' in c);

export async function predictRemote(files: string[], o: RemoteOptions, io: Io): Promise<void> {
  const specimenPath = o.specimen ? `/specimens/${encodeURIComponent(o.specimen)}` : undefined;
  // Checked first: an unknown specimen or a server that is down costs no upload.
  if (specimenPath) await call<SpecimenDetailJson>(o.server, specimenPath);
  const query = new URLSearchParams();
  if (o.tta) query.set('tta', 'true');
  if (o.specimen) query.set('specimen', o.specimen);
  const q = query.toString() ? `?${query}` : '';
  const results: (CaseJson | FileErrorJson)[] = [];
  const bar = progressBar('Uploading', io);
  for (let i = 0; i < files.length; i += DEFAULT_MAX_FILES) {
    const chunk = files.slice(i, i + DEFAULT_MAX_FILES);
    const form = new FormData();
    for (const f of chunk) form.append('images', new Blob([await readFile(f)]), basename(f));
    try {
      const reply = await call<PredictResponseJson>(o.server, `/predict${q}`, { method: 'POST', body: form });
      results.push(...reply.cases.map((c, k) => ({ ...c, file: chunk[k] })));
    } catch (err) {
      // A batch the server refused as a whole (none readable): each of its files failed.
      if (!(err instanceof HematoError) || err.code === 'server_unreachable') throw err;
      results.push(...chunk.map((file) => ({ file, error: err.code, message: err.message })));
    }
    bar.update(Math.min(files.length, i + chunk.length), files.length);
  }
  bar.stop();
  const specimen = specimenPath ? await call<SpecimenDetailJson>(o.server, specimenPath) : undefined;
  if (o.json) io.out(JSON.stringify({ cases: results, ...(specimen ? { specimen } : {}) }, null, 2));
  else {
    for (const c of results) {
      if (isError(c)) continue; // said once, on stderr, below
      const review = c.needsReview
        ? ` (needs review: ${c.reviewReasons.join(', ').replaceAll('_', ' ')})`
        : '';
      const cells =
        c.cells.length > 1 ? ` [${c.cells.length} cells: ${c.cells.map((x) => x.label).join(', ')}]` : '';
      io.out(
        `${c.file}: ${c.label ?? c.message ?? 'no white cell found'} ${c.label ? pct(c.confidence) : ''}${review}${cells}`.replace(
          / +/g,
          ' ',
        ),
      );
    }
    if (specimen) printSpecimen(specimen, io);
  }
  const failed = results.filter(isError);
  if (failed.length > 0) {
    for (const f of failed) io.err(`${f.file}: ${f.message}`);
    io.err(`${failed.length} of ${results.length} image(s) could not be analysed.`);
    io.exitCode = 1;
  }
}

function printSpecimen(d: SpecimenDetailJson, io: Io): void {
  const s = d.specimen;
  io.out('');
  io.out(
    `Specimen ${s.id}: ${d.progress.counted} of ${d.progress.target} white cells counted (${s.imageCount} images)` +
      `, ${d.needsReview} cell(s) need review${d.unclassified ? `, ${d.unclassified} unclassified` : ''}.`,
  );
  const diff = d.differential;
  const width = Math.max(...Object.keys(diff.counts).map((k) => k.length));
  for (const [cls, p] of Object.entries(diff.percentages))
    io.out(`  ${cls.padEnd(width)} ${String(diff.counts[cls]).padStart(4)}  ${p.toFixed(1).padStart(5)}%`);
  for (const [cls, per] of Object.entries(diff.per100White))
    io.out(
      `  ${cls.padEnd(width)} ${String(diff.counts[cls]).padStart(4)}  ${per.toFixed(1)} per 100 white cells`,
    );
}
