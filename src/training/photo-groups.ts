import { readFile } from 'node:fs/promises';

/**
 * Which source photo each image of the Kaggle "Blood Cell Images" set (dataset2-master) was made from.
 *
 * That set holds ~12,500 augmented copies of only 351 BCCD photos. Its file names `_A_B.jpeg` do NOT say
 * which photo: A is the image's index in a shuffled augmentation batch, so one A mixes copies of nearly
 * every photo of the class (checked visually and by matching, see scripts/kaggle-photo-groups.ts).
 * The table beside this file was made by matching every image to its BCCD photo; photos of the same
 * field (BCCD holds several pairs, a few across the Kaggle TRAIN/TEST split) share one group.
 *
 * Format (tab-separated, `#` comments): `group  <split>/<CLASS>  file-stem file-stem ...` (stems without
 * `.jpeg`).
 */
export const KAGGLE_PHOTO_GROUPS_URL = new URL('./kaggle-photo-groups.tsv', import.meta.url);

// Only apply the table to a folder that really is that dataset, not to any folder named TRAIN/EOSINOPHIL.
const MIN_COVERAGE = 0.9;

let table: Promise<Map<string, string> | null> | undefined;

/** key `TRAIN/EOSINOPHIL/_0_1169.jpeg` → group `bccd/00009`; null when the table file is absent. */
export function loadKaggleTable(url: URL = KAGGLE_PHOTO_GROUPS_URL): Promise<Map<string, string> | null> {
  const load = async () => {
    let text: string;
    try {
      text = await readFile(url, 'utf8');
    } catch {
      return null;
    }
    const map = new Map<string, string>();
    for (const line of text.split('\n')) {
      if (line === '' || line.startsWith('#')) continue;
      const [group, folder, stems] = line.split('\t');
      for (const stem of stems.split(' ')) map.set(`${folder}/${stem}.jpeg`, group);
    }
    return map;
  };
  if (url !== KAGGLE_PHOTO_GROUPS_URL) return load();
  table ??= load();
  return table;
}

/**
 * Returns a look-up from `<folder>/<CLASS>/<file>` keys of one source to photo groups, or one that always
 * answers undefined when the source is not (at least 90 %) the known Kaggle set.
 */
export async function photoGroupFor(keys: string[]): Promise<(key: string) => string | undefined> {
  const none = () => undefined;
  if (keys.length === 0) return none;
  const map = await loadKaggleTable();
  if (!map) return none;
  let hits = 0;
  for (const k of keys) if (map.has(k)) hits++;
  if (hits < MIN_COVERAGE * keys.length) return none;
  return (key) => map.get(key);
}
