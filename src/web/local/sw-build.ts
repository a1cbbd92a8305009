/**
 * Fills sw-template.js in for a build (vite.config.ts calls it): the cache name and the precache list.
 * Pure, so a unit test can check that the worker the build ships is a script that runs.
 */
const VERSION_SLOT = "'hematovision-__VERSION__'";
const PRECACHE_SLOT = 'const PRECACHE = __PRECACHE__;';

export function renderServiceWorker(template: string, version: string, files: readonly string[]): string {
  // Whole statements, not the bare placeholders: those also appear in the template's ESLint header, and a
  // first-match replace once filled in the comment and left the worker throwing a ReferenceError (it never
  // installed, so nothing worked offline).
  if (!template.includes(VERSION_SLOT) || !template.includes(PRECACHE_SLOT)) {
    throw new Error(
      'sw-template.js no longer has the statements the build fills in (cache name, precache list).',
    );
  }
  return template
    .replace(VERSION_SLOT, () => `'hematovision-${version}'`)
    .replace(PRECACHE_SLOT, () => `const PRECACHE = ${JSON.stringify(files)};`);
}
