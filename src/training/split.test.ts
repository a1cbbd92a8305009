import { describe, expect, it } from 'vitest';
import { groupedStratifiedSplit, type SplitItem } from './split.js';

/** groupsPerCell[source][class] groups, each with `copies` items (sizes vary a little). */
function makeItems(groupsPerCell: number[][], copies = 5): SplitItem[] {
  const items: SplitItem[] = [];
  groupsPerCell.forEach((perClass, source) =>
    perClass.forEach((nGroups, labelIndex) => {
      for (let g = 0; g < nGroups; g++) {
        for (let c = 0; c < copies + (g % 3); c++)
          items.push({ source, labelIndex, group: `s${source}/c${labelIndex}/g${g}` });
      }
    }),
  );
  // Interleave, so nothing relies on items arriving grouped.
  return items
    .map((it, i) => ({ it, k: (i * 7919) % items.length }))
    .sort((a, b) => a.k - b.k)
    .map((x) => x.it);
}

const cells = [
  [40, 20, 10, 2, 1],
  [30, 12, 5, 0, 3],
];

function groupSides(items: SplitItem[], split: { train: number[]; val: number[] }) {
  const sides = new Map<string, Set<string>>();
  for (const [side, idx] of Object.entries(split)) {
    for (const i of idx) {
      const g = items[i].group;
      if (!sides.has(g)) sides.set(g, new Set());
      sides.get(g)!.add(side);
    }
  }
  return sides;
}

describe('groupedStratifiedSplit', () => {
  const items = makeItems(cells);

  it('covers every item once and never cuts a group', () => {
    const split = groupedStratifiedSplit(items, { valFraction: 0.2, seed: 1 });
    expect([...split.train, ...split.val].sort((a, b) => a - b)).toEqual(items.map((_, i) => i));
    for (const [g, sides] of groupSides(items, split)) expect(sides.size, g).toBe(1);
  });

  it('takes about valFraction of the groups of each (source, class)', () => {
    for (const seed of [1, 2, 3]) {
      const split = groupedStratifiedSplit(items, { valFraction: 0.2, seed });
      const valGroups = new Map<string, Set<string>>();
      for (const i of split.val) {
        const key = `${items[i].source}/${items[i].labelIndex}`;
        if (!valGroups.has(key)) valGroups.set(key, new Set());
        valGroups.get(key)!.add(items[i].group);
      }
      cells.forEach((perClass, s) =>
        perClass.forEach((n, c) => {
          const got = valGroups.get(`${s}/${c}`)?.size ?? 0;
          const want = n < 2 ? 0 : Math.min(n - 1, Math.max(1, Math.round(0.2 * n)));
          expect(got, `source ${s} class ${c}`).toBe(want);
        }),
      );
      // Items follow groups, so the item fraction is close too.
      expect(split.val.length / items.length).toBeGreaterThan(0.15);
      expect(split.val.length / items.length).toBeLessThan(0.3);
    }
  });

  it('keeps a class with a single group in training', () => {
    const split = groupedStratifiedSplit(items, { valFraction: 0.5, seed: 4 });
    const val = new Set(split.val.map((i) => items[i].group));
    expect(val.has('s0/c4/g0')).toBe(false);
    // ...while a class with two groups gives one to validation.
    expect(['s0/c3/g0', 's0/c3/g1'].filter((g) => val.has(g))).toHaveLength(1);
  });

  it('is deterministic per seed, whatever the item order, and differs between seeds', () => {
    const a = groupedStratifiedSplit(items, { valFraction: 0.2, seed: 7 });
    expect(groupedStratifiedSplit(items, { valFraction: 0.2, seed: 7 })).toEqual(a);
    const reversed = [...items].reverse();
    const r = groupedStratifiedSplit(reversed, { valFraction: 0.2, seed: 7 });
    expect(new Set(r.val.map((i) => reversed[i].group))).toEqual(new Set(a.val.map((i) => items[i].group)));
    const b = groupedStratifiedSplit(items, { valFraction: 0.2, seed: 8 });
    expect(b.val).not.toEqual(a.val);
  });

  it('keeps a group spanning two cells whole, in the cell holding most of it', () => {
    const mixed: SplitItem[] = [
      ...makeItems([[6, 6]], 2),
      { source: 0, labelIndex: 1, group: 's0/c0/g0' },
      { source: 1, labelIndex: 1, group: 's0/c0/g0' },
    ];
    for (let seed = 0; seed < 20; seed++) {
      const split = groupedStratifiedSplit(mixed, { valFraction: 0.3, seed });
      for (const sides of groupSides(mixed, split).values()) expect(sides.size).toBe(1);
    }
  });

  it("hashed: a group's side depends on its name, the seed and its stratum's size, not on other strata", () => {
    const valGroups = (its: SplitItem[], seed: number) =>
      new Set(
        groupedStratifiedSplit(its, { valFraction: 0.2, seed, order: 'hashed' }).val.map((i) => its[i].group),
      );
    const a = valGroups(items, 7);
    for (const groups of groupSides(
      items,
      groupedStratifiedSplit(items, { valFraction: 0.2, seed: 7, order: 'hashed' }),
    ).values())
      expect(groups.size).toBe(1);
    // Another class's groups changed (source 1, class 0 loses ten): the other strata keep their sides.
    const fewer = items.filter(
      (it) => !(it.source === 1 && it.labelIndex === 0 && /g[12]\d$/.test(it.group)),
    );
    const inOthers = (set: Set<string>) => [...set].filter((g) => !g.startsWith('s1/c0/')).sort();
    expect(inOthers(valGroups(fewer, 7))).toEqual(inOthers(a));
    expect(valGroups([...items].reverse(), 7)).toEqual(a);
    expect(valGroups(items, 8)).not.toEqual(a);
  });

  it('rejects a fraction outside [0, 1)', () => {
    expect(() => groupedStratifiedSplit(items, { valFraction: 1, seed: 0 })).toThrow(RangeError);
    expect(groupedStratifiedSplit(items, { valFraction: 0, seed: 0 }).val).toEqual([]);
  });
});
