/**
 * Model versions: every model the server has run or made, its card and sha256, in the store (so every
 * replica can load any of them) and written out under DATA_DIR/models/<sha256>/ to be loaded; the first
 * model the server started with (the bundled one) is version 1. Activating a version loads it, records it,
 * and swaps it into the running analyser; other replicas notice the new activation and follow (sync). A roll
 * back undoes activations one by one (rollback.ts).
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { HematoError } from '../../errors.js';
import { cardPathFor, DEFAULT_MODEL_PATH, resolveModelPath } from '../../model/classifier.js';
import type { ModelCard } from '../../model/types.js';
import type { HematoVision } from '../../pipeline.js';
import { writeAtomic } from '../../training/files.js';
import type { CaseStore, ModelVersion } from '../store/index.js';
import type { FineTuneSettings } from './adaptation.js';
import { rollbackTarget } from './rollback.js';
import type { SwappableVision } from './swappable.js';

/** More activations than a server will ever see: the whole log is read to replay it (rollback.ts). */
const ACTIVATION_LOG_MAX = 1_000_000;

const versionsOldestFirst = (newestFirst: { version: number }[]) => newestFirst.map((a) => a.version).reverse();

export interface ModelSource {
  /** The model the server was started with (model.onnx, card beside it). */
  path: string;
  /** Loads a model file as the server runs models (a worker thread). */
  load: (modelPath: string) => Promise<HematoVision>;
  /** When adaptations fine-tune (default: never; they train a new head). */
  fineTune?: FineTuneSettings;
}

export class ModelRegistry {
  /** The version serving here now. */
  private activeVersion = 0;
  private readonly dir: string;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly store: CaseStore,
    dataDir: string,
    private readonly vision: SwappableVision,
    private readonly source: ModelSource,
  ) {
    this.dir = join(dataDir, 'models');
  }

  /** The model file the server started with: its folder holds files a stored version lacks (training statistics). */
  get startupModelPath(): string {
    return resolveModelPath(this.source.path);
  }

  /**
   * Registers the startup model (version 1 on a new database) and makes the recorded active version the one
   * served; a startup model never seen before becomes active (an operator deployed it).
   */
  async init(): Promise<void> {
    const path = resolveModelPath(this.source.path);
    const onnx = readFileSync(path);
    const card = JSON.parse(readFileSync(cardPathFor(path), 'utf8')) as ModelCard;
    const sha = createHash('sha256').update(onnx).digest('hex');
    const known = (await this.store.models.list()).some((m) => m.sha256 === sha);
    const bundled = path === resolveModelPath(DEFAULT_MODEL_PATH);
    const mine = await this.store.models.add({
      sha256: sha,
      name: card.name,
      card,
      onnx,
      source: bundled ? 'bundled' : 'startup',
    });
    const [last] = await this.store.models.activations(1);
    if (!last || (!known && last.version !== mine.version)) {
      await this.store.models.activate(mine.version);
      this.activeVersion = mine.version;
    } else if (last.version === mine.version) {
      this.activeVersion = mine.version;
    } else {
      this.activeVersion = mine.version;
      await this.follow(last.version);
    }
  }

  get active(): number {
    return this.activeVersion;
  }

  /** The versions, the latest activations (newest first) and the version a roll back would activate. */
  async list(): Promise<{
    versions: ModelVersion[];
    activations: { version: number; activatedAt: string }[];
    rollbackTo: number | null;
  }> {
    const [versions, log] = await Promise.all([this.store.models.list(), this.activationLog()]);
    return { versions, activations: log.slice(0, 50), rollbackTo: rollbackTarget(versionsOldestFirst(log)) };
  }

  /** The whole activation log, newest first: a roll back replays all of it (people activate rarely). */
  private activationLog() {
    return this.store.models.activations(ACTIVATION_LOG_MAX);
  }

  /**
   * A stored version written out to be run: its row (card, sha256) and its model.onnx under
   * DATA_DIR/models/<sha256>/. Throws when no such version is stored (deleted since a job naming it began).
   */
  async materialize(version: number): Promise<{ model: ModelVersion; modelPath: string }> {
    const m = await this.store.models.get(version);
    if (!m) throw new Error(`Model version ${version} is gone.`);
    return { model: m, modelPath: await this.writeOut(m) };
  }

  /** Writes a stored version's files under DATA_DIR/models/<sha256>/ (once) and returns its model.onnx. */
  private async writeOut(m: ModelVersion): Promise<string> {
    const folder = join(this.dir, m.sha256);
    const modelPath = join(folder, 'model.onnx');
    if (!existsSync(modelPath) || !existsSync(join(folder, 'model.json'))) {
      const onnx = await this.store.models.readOnnx(m.version);
      if (!onnx) throw new HematoError(`Model version ${m.version} has no bytes.`, 'not_found', 404);
      mkdirSync(folder, { recursive: true, mode: 0o750 });
      // Model first, card second: a card never stands beside a half-written model.
      writeAtomic(modelPath, onnx);
      writeAtomic(join(folder, 'model.json'), Buffer.from(JSON.stringify(m.card, null, 2) + '\n'));
    }
    return modelPath;
  }

  /** Makes `version` the active model here and for every replica; refused for other classes. */
  activate(version: number): Promise<ModelVersion> {
    return this.serial(() => this.activateNow(version));
  }

  private async activateNow(version: number): Promise<ModelVersion> {
    const m = await this.store.models.get(version);
    if (!m) throw new HematoError(`There is no model version ${version}.`, 'not_found', 404);
    this.checkClasses(m);
    await this.load(m);
    await this.store.models.activate(version);
    return m;
  }

  /**
   * Undoes the last activation (rollback.ts): activates the version that was active before the current one
   * was, skipping the versions already rolled back from, down to the first version activated; 409 there.
   */
  rollback(): Promise<ModelVersion> {
    return this.serial(async () => {
      const log = versionsOldestFirst(await this.activationLog());
      const target = rollbackTarget(log);
      if (target === null)
        throw new HematoError(
          log.length === 0
            ? 'No model version was ever activated: nothing to roll back to.'
            : `Nothing to roll back to: version ${log[log.length - 1]} is the first version activated ` +
                '(every activation after it was rolled back already). Activate a version by its number instead.',
          'conflict',
          409,
        );
      return this.activateNow(target);
    });
  }

  /** Follows an activation made by another replica (PostgreSQL). */
  sync(): Promise<void> {
    return this.serial(async () => {
      const [last] = await this.store.models.activations(1);
      if (last && last.version !== this.activeVersion) await this.follow(last.version);
    });
  }

  private async follow(version: number): Promise<void> {
    const m = await this.store.models.get(version);
    if (!m) return;
    this.checkClasses(m);
    await this.load(m);
  }

  private checkClasses(m: ModelVersion): void {
    const classes = (m.card as ModelCard).classes;
    const serving = this.vision.card.classes;
    if (classes.length !== serving.length || classes.some((c, i) => c !== serving[i]))
      throw new HematoError(
        `Model version ${m.version} knows ${classes.join(', ')}; the server serves ${serving.join(', ')}. ` +
          'A model of other classes needs a restart with MODEL set to it.',
        'classes_mismatch',
        409,
      );
  }

  private async load(m: ModelVersion): Promise<void> {
    if (m.version === this.activeVersion) return;
    const next = await this.source.load(await this.writeOut(m));
    this.activeVersion = m.version;
    await this.vision.swap(next);
  }

  private serial<T>(f: () => Promise<T>): Promise<T> {
    const run = this.chain.then(f, f);
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** Waits for an activation under way. */
  async close(): Promise<void> {
    await this.chain;
  }
}
