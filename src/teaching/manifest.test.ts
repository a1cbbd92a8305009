import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { loadTeachingSet, TEACHING_CLASSES, TEACHING_DIR } from './manifest.js';
import { TEACHING_NOTES, teachingNote } from './notes.js';

describe('bundled teaching set', () => {
  const set = loadTeachingSet();

  it('holds 15 expert-labelled cells of each of the 8 PBC classes, 120 in all', () => {
    expect(set.cells).toHaveLength(120);
    const counts = Object.fromEntries(TEACHING_CLASSES.map((c) => [c, 0]));
    for (const c of set.cells) counts[c.label] += 1;
    expect(counts).toEqual(Object.fromEntries(TEACHING_CLASSES.map((c) => [c, 15])));
  });

  it('cites the PBC dataset and its CC BY 4.0 licence, and says what was changed', () => {
    expect(set.source).toMatch(/Acevedo/);
    expect(set.source).toMatch(/10\.1016\/j\.dib\.2020\.105474/);
    expect(set.license).toMatch(/CC BY 4\.0/);
    expect(set.modified).toMatch(/byte for byte/);
    const attribution = readFileSync(join(TEACHING_DIR, 'ATTRIBUTION.md'), 'utf8');
    expect(attribution).toMatch(/CC BY 4\.0/);
    expect(attribution).toMatch(/byte for byte/);
  });

  it('is under 3 MB, every image a JPEG of the size the manifest gives, no two the same', async () => {
    let bytes = 0;
    const hashes = new Set<string>();
    for (const c of set.cells) {
      const path = join(TEACHING_DIR, c.file);
      bytes += statSync(path).size;
      const meta = await sharp(path).metadata();
      expect([meta.format, meta.width, meta.height]).toEqual(['jpeg', c.width, c.height]);
      expect(Math.max(c.width, c.height)).toBeGreaterThanOrEqual(200); // still recognisable
      hashes.add(createHash('sha256').update(readFileSync(path)).digest('hex'));
    }
    expect(bytes).toBeLessThanOrEqual(3 * 1024 * 1024);
    expect(hashes.size).toBe(set.cells.length);
    expect(new Set(set.cells.map((c) => c.sourceFile)).size).toBe(set.cells.length);
  });

  it('spreads immature granulocytes and neutrophils over their PBC sub-types', () => {
    const subtypes = (label: string) =>
      new Set(set.cells.filter((c) => c.label === label).map((c) => c.subtype));
    expect([...subtypes('ig')]).toEqual(
      expect.arrayContaining(['promyelocyte', 'myelocyte', 'metamyelocyte']),
    );
    expect([...subtypes('neutrophil')]).toEqual(
      expect.arrayContaining(['band neutrophil', 'segmented neutrophil']),
    );
  });
});

describe('teaching notes', () => {
  it('has a 2–4 sentence note for every class, naming a look-alike that is itself a class', () => {
    for (const label of TEACHING_CLASSES) {
      const note = teachingNote(label);
      expect(note, label).not.toBeNull();
      const sentences = note!.text.split(/(?<=[.!?])\s+(?=[A-Z])/).length;
      expect(sentences, label).toBeGreaterThanOrEqual(2);
      expect(sentences, label).toBeLessThanOrEqual(4);
      if (note!.versus) expect(TEACHING_CLASSES, label).toContain(note!.versus);
    }
    expect(Object.keys(TEACHING_NOTES).sort()).toEqual([...TEACHING_CLASSES].sort());
    expect(teachingNote('other')).toBeNull();
    expect(teachingNote('toString')).toBeNull();
  });
});

describe('loadTeachingSet', () => {
  const write = (manifest: unknown) => {
    const dir = mkdtempSync(join(tmpdir(), 'hv-teaching-'));
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest));
    return dir;
  };
  const cell = {
    id: 'pbc-0123abcd',
    file: 'images/pbc-0123abcd.jpg',
    label: 'basophil',
    sourceFile: 'BA_1.jpg',
  };

  it('refuses a missing folder, bad JSON, an unknown label and a file outside images/', () => {
    expect(() => loadTeachingSet(join(tmpdir(), 'hv-no-such-teaching'))).toThrow(/manifest\.json missing/);
    const bad = mkdtempSync(join(tmpdir(), 'hv-teaching-'));
    writeFileSync(join(bad, 'manifest.json'), '{');
    expect(() => loadTeachingSet(bad)).toThrow(/not valid JSON/);
    expect(() => loadTeachingSet(write({ cells: [{ ...cell, label: 'blast' }] }))).toThrow(/unknown label/);
    expect(() => loadTeachingSet(write({ cells: [{ ...cell, file: '../../etc/passwd' }] }))).toThrow(
      /images\/pbc-0123abcd\.jpg/,
    );
    expect(() => loadTeachingSet(write({ cells: [cell, cell] }))).toThrow(/repeated id/);
    expect(loadTeachingSet(write({ cells: [cell] })).cells).toHaveLength(1);
  });
});
