/** Reads and checks the bundled teaching set (teaching/ at the repository root). */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HematoError } from '../errors.js';
import { TEACHING_CLASSES, type TeachingCell, type TeachingManifest } from './types.js';

export * from './types.js';

export const TEACHING_DIR = resolve(fileURLToPath(new URL('../../teaching', import.meta.url)));

const ID = /^pbc-[0-9a-f]{8}$/;

/**
 * The manifest, with every entry checked: a damaged or hand-edited manifest is refused with the entry it
 * trips on rather than served half-broken. The images themselves are read when asked for.
 */
export function loadTeachingSet(dir: string = TEACHING_DIR): TeachingManifest {
  const path = join(dir, 'manifest.json');
  if (!existsSync(path))
    throw new HematoError(`No teaching set at ${dir} (manifest.json missing).`, 'bad_config', 500);
  let manifest: TeachingManifest;
  try {
    manifest = JSON.parse(readFileSync(path, 'utf8')) as TeachingManifest;
  } catch (err) {
    throw new HematoError(
      `The teaching manifest ${path} is not valid JSON: ${(err as Error).message}`,
      'bad_config',
      500,
    );
  }
  if (!Array.isArray(manifest?.cells))
    throw new HematoError(`The teaching manifest ${path} has no cells list.`, 'bad_config', 500);
  const seen = new Set<string>();
  manifest.cells.forEach((c: TeachingCell, i) => {
    const where = `teaching manifest entry ${i + 1}`;
    if (!ID.test(c?.id ?? '') || seen.has(c.id))
      throw new HematoError(`${where}: missing, malformed or repeated id.`, 'bad_config', 500);
    if (!(TEACHING_CLASSES as readonly string[]).includes(c.label))
      throw new HematoError(
        `${where} (${c.id}): unknown label ${JSON.stringify(c.label)}.`,
        'bad_config',
        500,
      );
    if (c.file !== `images/${c.id}.jpg`)
      throw new HematoError(`${where} (${c.id}): file must be images/${c.id}.jpg.`, 'bad_config', 500);
    seen.add(c.id);
  });
  return manifest;
}
