/**
 * Fine-tuning checkpoints: one file (a JSON header, then float32 tensors), replaced atomically after every
 * epoch, holding all that a resumed run needs to continue exactly where the interrupted one stopped.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { HematoError } from '../../errors.js';
import type { ParamInfo } from '../../model/net/spec.js';
import { writeAtomic } from '../files.js';
import type { L2Score } from '../head.js';
import type { OptimizerState } from '../optimizer.js';
import type { ValidationScore } from './validator.js';

/** Everything that must match for a resumed run to continue the same run. */
export type RunConfig = Record<string, unknown> & { epochs: number };

/** One epoch of the loop as reported and kept in the checkpoint's history. */
export interface EpochSummary {
  /** 0 is the starting point (frozen-backbone head), before any fine-tuning. */
  epoch: number;
  trainLoss: number | null;
  trainAccuracy: number | null;
  val: ValidationScore;
  /** Backbone learning rate at the end of the epoch. */
  lr: number | null;
  seconds: number;
  best: boolean;
}

/** Where the epoch loop stands: all of it is saved in the checkpoint after every epoch. */
export interface LoopState {
  /** Completed epochs. */
  epoch: number;
  /** Optimizer steps so far (the schedule's position). */
  step: number;
  bestEpoch: number;
  bestNll: number;
  /** Epochs since the last improvement. */
  bad: number;
  history: EpochSummary[];
  stoppedEarly: boolean;
}

export interface CheckpointHeader extends LoopState {
  format: 1;
  config: RunConfig;
  initial: { l2: number; l2Table: L2Score[] };
  finished: boolean;
  /** The sequence of augmentation and batch order: functions of (seed, epoch), so the next epoch is enough. */
  rng: { seed: number; nextEpoch: number };
  optimizerSteps: { head: number; body: number };
  tensors: { key: string; length: number }[];
}

export interface Checkpoint {
  header: CheckpointHeader;
  tensors: Map<string, Float32Array>;
}

const MAGIC = 'HVCKPT01';

export function checkSameRun(saved: RunConfig, now: RunConfig, dir: string): void {
  const keys = [...new Set([...Object.keys(saved), ...Object.keys(now)])];
  const differ = keys.filter((key) => JSON.stringify(saved[key]) !== JSON.stringify(now[key]));
  if (differ.length === 0) return;
  const show = (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v));
  throw new HematoError(
    `The checkpoint in ${dir} belongs to a run with other settings: ` +
      differ.map((key) => `${key} ${show(saved[key])} (now ${show(now[key])})`).join('; ') +
      '. Resume with the same options and data, or start over in another --out folder.',
    'checkpoint_mismatch',
  );
}

export function writeCheckpoint(
  file: string,
  c: LoopState & {
    config: RunConfig;
    initial: CheckpointHeader['initial'];
    finished: boolean;
    optimizer: { head: OptimizerState; body: OptimizerState };
    weights: ParamInfo[];
    best: Map<string, Float32Array>;
  },
): void {
  const tensors: [string, Float32Array][] = [];
  for (const p of c.weights) tensors.push([`w/${p.name}`, p.data]);
  for (const [name, data] of c.best) tensors.push([`best/${name}`, data]);
  for (const [group, st] of Object.entries(c.optimizer))
    for (const [name, bufs] of Object.entries(st.buffers))
      bufs.forEach((b, i) => tensors.push([`opt/${group}/${name}/${i}`, b]));
  const header: CheckpointHeader = {
    format: 1,
    config: c.config,
    initial: c.initial,
    epoch: c.epoch,
    step: c.step,
    bestEpoch: c.bestEpoch,
    bestNll: c.bestNll,
    bad: c.bad,
    history: c.history,
    stoppedEarly: c.stoppedEarly,
    finished: c.finished,
    rng: { seed: c.config.seed as number, nextEpoch: c.epoch + 1 },
    optimizerSteps: { head: c.optimizer.head.step, body: c.optimizer.body.step },
    tensors: tensors.map(([key, data]) => ({ key, length: data.length })),
  };
  mkdirSync(dirname(file), { recursive: true });
  writeAtomic(
    file,
    encodeCheckpoint(
      header,
      tensors.map(([, d]) => d),
    ),
  );
}

function encodeCheckpoint(header: CheckpointHeader, data: Float32Array[]): Buffer {
  const json = Buffer.from(JSON.stringify(header));
  const headerBytes = 12 + json.length;
  const pad = (4 - (headerBytes % 4)) % 4;
  const body = data.reduce((a, d) => a + d.byteLength, 0);
  const buf = Buffer.alloc(headerBytes + pad + body);
  buf.write(MAGIC, 0, 'latin1');
  buf.writeUInt32LE(json.length, 8);
  json.copy(buf, 12);
  let off = headerBytes + pad;
  for (const d of data) {
    Buffer.from(d.buffer, d.byteOffset, d.byteLength).copy(buf, off);
    off += d.byteLength;
  }
  return buf;
}

export function readCheckpoint(file: string): Checkpoint {
  const buf = readFileSync(file);
  const bad = (why: string) =>
    new HematoError(
      `${file} is not a usable checkpoint (${why}); delete it to start over.`,
      'bad_checkpoint',
    );
  if (buf.length < 12 || buf.toString('latin1', 0, 8) !== MAGIC) throw bad('unknown format');
  const len = buf.readUInt32LE(8);
  let header: CheckpointHeader;
  try {
    header = JSON.parse(buf.toString('utf8', 12, 12 + len));
  } catch {
    throw bad('unreadable header');
  }
  let off = 12 + len + ((4 - ((12 + len) % 4)) % 4);
  const tensors = new Map<string, Float32Array>();
  for (const t of header.tensors) {
    if (off + t.length * 4 > buf.length) throw bad('truncated');
    // Copy out: the Buffer may sit at an offset that is no multiple of 4 in its pool.
    const data = new Float32Array(t.length);
    new Uint8Array(data.buffer).set(buf.subarray(off, off + t.length * 4));
    tensors.set(t.key, data);
    off += t.length * 4;
  }
  return { header, tensors };
}

export function markFinished(file: string): void {
  if (!existsSync(file)) return;
  const c = readCheckpoint(file);
  c.header.finished = true;
  writeAtomic(
    file,
    encodeCheckpoint(
      c.header,
      c.header.tensors.map((t) => c.tensors.get(t.key)!),
    ),
  );
}

export function loadInto(params: ParamInfo[], c: Checkpoint, group: string): void {
  for (const p of params) {
    const t = c.tensors.get(`${group}/${p.name}`);
    if (!t || t.length !== p.data.length)
      throw new HematoError(`The checkpoint lacks ${p.name}.`, 'bad_checkpoint');
    p.data.set(t);
  }
}

export function optimizerState(c: Checkpoint, group: 'head' | 'body', params: ParamInfo[]): OptimizerState {
  const buffers: Record<string, Float32Array[]> = {};
  for (const p of params) {
    buffers[p.name] = [0, 1].map((i) => {
      const t = c.tensors.get(`opt/${group}/${p.name}/${i}`);
      if (!t)
        throw new HematoError(`The checkpoint lacks the optimizer state of ${p.name}.`, 'bad_checkpoint');
      return t;
    });
  }
  return { step: c.header.optimizerSteps[group], buffers };
}
