import { createHash } from 'node:crypto';

/** What a split needs to know of an item. */
export interface SplitItem {
  labelIndex: number;
  group: string;
  source: number;
}

export interface Split {
  /** Item indices, ascending. */
  train: number[];
  val: number[];
}

/** The project's one seeded generator (mulberry32), under the name this module's callers use. */
import { createRng as seededRandom, shuffled } from '../imaging/random.js';
export { seededRandom };

interface Strata {
  /** stratum key → its group names, sorted (so the input order of items does not matter). */
  strata: Map<string, string[]>;
  members: Map<string, number[]>;
}

/**
 * Puts each group in one (source, class) stratum. A group whose items span strata (e.g. one field
 * photographed for two sources) goes where most of its items are; ties go to the first key.
 */
function stratify(items: SplitItem[]): Strata {
  const members = new Map<string, number[]>();
  const votes = new Map<string, Map<string, number>>();
  items.forEach((it, i) => {
    let m = members.get(it.group);
    if (!m) members.set(it.group, (m = []));
    m.push(i);
    const key = `${it.source}:${it.labelIndex}`;
    let v = votes.get(it.group);
    if (!v) votes.set(it.group, (v = new Map()));
    v.set(key, (v.get(key) ?? 0) + 1);
  });
  const strata = new Map<string, string[]>();
  for (const [group, v] of votes) {
    let best = '';
    let bestN = -1;
    for (const [key, n] of [...v].sort(([a], [b]) => (a < b ? -1 : 1))) {
      if (n > bestN) [best, bestN] = [key, n];
    }
    let s = strata.get(best);
    if (!s) strata.set(best, (s = []));
    s.push(group);
  }
  for (const s of strata.values()) s.sort();
  return { strata: new Map([...strata].sort(([a], [b]) => (a < b ? -1 : 1))), members };
}

/**
 * Train/validation split that never cuts a group (copies of one cell) and takes about `valFraction` of the
 * groups of every (source, class): at least one when that cell has two or more groups, never all of them
 * (a class with a single group stays in training).
 *
 * `order: 'shuffled'` (the default) draws each stratum's validation groups with one seeded generator run
 * across the strata. `order: 'hashed'` takes those first by sha256(seed, group name) instead: a group's
 * side then depends only on its own name, the seed and its stratum's size, so when group names come from
 * content (an image's sha256) the same images split the same way whatever else is stored with them.
 */
export function groupedStratifiedSplit(
  items: SplitItem[],
  options: { valFraction: number; seed: number; order?: 'shuffled' | 'hashed' },
): Split {
  const { valFraction, seed } = options;
  if (!(valFraction >= 0 && valFraction < 1)) throw new RangeError('valFraction must be in [0, 1).');
  const { strata, members } = stratify(items);
  const rand = seededRandom(seed);
  const hashed = (groups: string[]) =>
    groups
      .map((g) => ({ g, h: createHash('sha256').update(`${seed}\0${g}`).digest('hex') }))
      .sort((a, b) => (a.h < b.h ? -1 : a.h > b.h ? 1 : 0))
      .map((x) => x.g);
  const isVal = new Uint8Array(items.length);
  for (const groups of strata.values()) {
    const n = groups.length;
    if (n < 2 || valFraction === 0) continue;
    const nVal = Math.min(n - 1, Math.max(1, Math.round(valFraction * n)));
    const ordered = options.order === 'hashed' ? hashed(groups) : shuffled(groups, rand);
    for (const g of ordered.slice(0, nVal)) for (const i of members.get(g)!) isVal[i] = 1;
  }
  const train: number[] = [];
  const val: number[] = [];
  for (let i = 0; i < items.length; i++) (isVal[i] ? val : train).push(i);
  return { train, val };
}
