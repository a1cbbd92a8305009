import { readdir, realpath, stat } from 'node:fs/promises';
import { basename, dirname, extname, join, relative, resolve } from 'node:path';
import { DatasetError } from '../errors.js';
import { photoGroupFor } from './photo-groups.js';

/** One labelled image. */
export interface DatasetItem {
  /** Absolute path (symlinks not resolved, so it reads as the user laid it out). */
  path: string;
  /** Lower-case class name. */
  label: string;
  /** Index of `label` in `Dataset.classes`. */
  labelIndex: number;
  /** Index into `Dataset.sources`. */
  source: number;
  /** `Dataset.sources[source].name`, so per-source options keyed by name need no lookup. */
  sourceName: string;
  /**
   * Images sharing a group are copies of one physical cell (augmented copies of one photo, or two photos
   * of the same field) and must stay on one side of a split. Without better knowledge each file is its
   * own group.
   */
  group: string;
}

export interface DatasetSource {
  name: string;
  path: string;
  /** Images per class (every class of the dataset, zeros included). */
  counts: Record<string, number>;
}

export interface Dataset {
  classes: string[];
  items: DatasetItem[];
  sources: DatasetSource[];
  skipped: {
    /** Files whose extension is not an image's. */
    nonImage: number;
    /** Images in class folders the model does not know (only with `knownClasses`), per class. */
    unknownClass: Record<string, number>;
  };
}

export interface ScanOptions {
  /** Keep only these classes, in this order (case-insensitive); an unknown name is an error. */
  classes?: string[];
  /**
   * The classes a model knows, in its output order. Folders of other classes are skipped and counted;
   * `classes` (and so `labelIndex`) then follow this order, so indices match the model's outputs.
   */
  knownClasses?: string[];
}

export const IMAGE_EXTENSIONS = new Set(['.jpg', '.jpeg', '.png', '.tif', '.tiff', '.webp', '.bmp']);

// Folder names that say which split a folder is, not which collection it comes from.
const SPLIT_NAME = /^(train|training|test|testing|val|valid|validation|dev|holdout|test[_-]?simple)$/i;

const byCodePoint = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

interface ClassFolder {
  label: string;
  dir: string;
  /** The folder's name as found on disk (case kept), for look-ups keyed by it. */
  folderName: string;
}

interface ScannedSource {
  name: string;
  path: string;
  folders: ClassFolder[];
}

async function statOrNull(path: string) {
  try {
    return await stat(path); // follows symlinks
  } catch {
    return null;
  }
}

async function listClassFolders(dir: string): Promise<ClassFolder[]> {
  const entries = (await readdir(dir)).filter((n) => !n.startsWith('.')).sort(byCodePoint);
  const folders: ClassFolder[] = [];
  for (const name of entries) {
    const s = await statOrNull(join(dir, name));
    if (s?.isDirectory()) folders.push({ label: name.toLowerCase(), dir: join(dir, name), folderName: name });
  }
  // By class, so item order does not depend on how each source spells its folders.
  return folders.sort((a, b) => byCodePoint(a.label, b.label) || byCodePoint(a.folderName, b.folderName));
}

/** Image files under a class folder (nested folders included), sorted; counts non-images. */
async function listImages(
  dir: string,
  counter: { nonImage: number },
  seen = new Set<string>(),
): Promise<string[]> {
  // Symlinked folders are followed; a cycle would otherwise recurse forever.
  const real = await realpath(dir);
  if (seen.has(real)) return [];
  seen.add(real);
  const out: string[] = [];
  for (const name of (await readdir(dir)).filter((n) => !n.startsWith('.')).sort(byCodePoint)) {
    const full = join(dir, name);
    const s = await statOrNull(full);
    if (!s) continue; // dangling symlink
    if (s.isDirectory()) out.push(...(await listImages(full, counter, seen)));
    else if (s.isFile()) {
      if (IMAGE_EXTENSIONS.has(extname(name).toLowerCase())) out.push(full);
      else counter.nonImage++;
    }
  }
  return out;
}

function sourceName(dir: string, taken: Set<string>): string {
  const base = basename(dir);
  const parent = basename(dirname(dir));
  let name = SPLIT_NAME.test(base) && parent ? parent : base;
  if (taken.has(name)) name = `${parent}-${base}`;
  let unique = name;
  for (let i = 2; taken.has(unique); i++) unique = `${name}-${i}`;
  taken.add(unique);
  return unique;
}

/**
 * Reads one or more dataset folders, each laid out as `<dir>/<class>/<image>`. Class folder names match
 * case-insensitively across folders; every folder becomes its own source.
 */
export async function scanDatasets(dirs: string[], options: ScanOptions = {}): Promise<Dataset> {
  if (dirs.length === 0) throw new DatasetError('No dataset folder given.');
  const taken = new Set<string>();
  const scanned: ScannedSource[] = [];
  for (const d of dirs) {
    const dir = resolve(d);
    const s = await statOrNull(dir);
    if (!s) throw new DatasetError(`Dataset folder ${dir} does not exist.`);
    if (!s.isDirectory())
      throw new DatasetError(`${dir} is not a folder; give a folder of class sub-folders.`);
    const folders = await listClassFolders(dir);
    if (folders.length === 0) {
      throw new DatasetError(
        `${dir} has no class sub-folders; expected one folder per class (e.g. ${join(dir, 'neutrophil')}) holding its images.`,
      );
    }
    scanned.push({ name: sourceName(dir, taken), path: dir, folders });
  }

  const found = [...new Set(scanned.flatMap((s) => s.folders.map((f) => f.label)))].sort(byCodePoint);
  const known = options.knownClasses?.map((c) => c.toLowerCase());
  let classes: string[];
  if (options.classes) {
    classes = options.classes.map((c) => c.toLowerCase());
    const missing = classes.filter((c) => !found.includes(c));
    if (missing.length > 0) {
      throw new DatasetError(
        `Unknown class${missing.length > 1 ? 'es' : ''} ${missing.join(', ')}; the data has: ${found.join(', ')}.`,
      );
    }
    if (new Set(classes).size !== classes.length)
      throw new DatasetError('A class is named twice in the class list.');
    if (known) {
      const foreign = classes.filter((c) => !known.includes(c));
      if (foreign.length > 0) {
        throw new DatasetError(
          `The model does not know ${foreign.join(', ')}; it knows: ${known.join(', ')}.`,
        );
      }
    }
  } else {
    classes = known ?? found;
  }
  const classIndex = new Map(classes.map((c, i) => [c, i]));

  const items: DatasetItem[] = [];
  const skipped: Dataset['skipped'] = { nonImage: 0, unknownClass: {} };
  const sources: DatasetSource[] = [];
  for (const [si, src] of scanned.entries()) {
    const counts: Record<string, number> = Object.fromEntries(classes.map((c) => [c, 0]));
    const files: { path: string; label: string; key: string }[] = [];
    for (const f of src.folders) {
      const paths = await listImages(f.dir, skipped);
      if (known && !known.includes(f.label)) {
        if (paths.length) skipped.unknownClass[f.label] = (skipped.unknownClass[f.label] ?? 0) + paths.length;
        continue;
      }
      if (!classIndex.has(f.label)) continue; // not among the classes asked for
      for (const p of paths) {
        files.push({
          path: p,
          label: f.label,
          key: `${basename(src.path)}/${f.folderName}/${relative(f.dir, p)}`,
        });
      }
    }
    const photoGroup = await photoGroupFor(files.map((f) => f.key));
    for (const f of files) {
      counts[f.label]++;
      items.push({
        path: f.path,
        label: f.label,
        labelIndex: classIndex.get(f.label)!,
        source: si,
        sourceName: src.name,
        group: photoGroup(f.key) ?? `${src.name}/${relative(src.path, f.path)}`,
      });
    }
    sources.push({ name: src.name, path: src.path, counts });
  }

  if (items.length === 0) {
    const where = scanned.map((s) => s.path).join(', ');
    const unknown = Object.keys(skipped.unknownClass);
    throw new DatasetError(
      unknown.length > 0 && known
        ? `No images of a class the model knows (${known.join(', ')}) in ${where}; found only ${unknown.join(', ')}.`
        : `No images (${[...IMAGE_EXTENSIONS].join(' ')}) in the class folders of ${where}.`,
    );
  }
  return { classes, items, sources, skipped };
}

/** Every image file under a folder, nested folders included (labels, if any, ignored), sorted. */
export async function listImageFiles(dir: string): Promise<string[]> {
  const s = await statOrNull(resolve(dir));
  if (!s?.isDirectory()) throw new DatasetError(`Folder ${resolve(dir)} does not exist.`);
  return listImages(resolve(dir), { nonImage: 0 });
}
