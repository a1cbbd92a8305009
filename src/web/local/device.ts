/**
 * "Analyse on this device": the switch on the analyse page (remembered in localStorage), and the batch
 * analysis that answers in the server's response shape so the page shows the same result cards. Nothing is
 * uploaded; a case analysed here is stored only if the user saves it to the server afterwards.
 */
import { api, isCaseError, type CaseResult, type PredictResponse } from '../api.js';
import type { AppContext } from '../context.js';
import { h } from '../dom.js';
import { differential } from '../../model/differential.js';
import { HematoError } from '../../errors.js';
import type { RgbImage } from '../../imaging/types.js';
import type { Prediction } from '../../model/types.js';
import {
  analyseFile,
  classifyCrops,
  decodeFile,
  loadLocalModel,
  type LocalAnalysis,
  type LocalModel,
} from './analyse-local.js';

const STORAGE_KEY = 'hematovision.analyseOnDevice';
/** Ids of cases analysed here start with this: they exist only in this page. */
export const DEVICE_CASE_PREFIX = 'device-';

let modelPromise: Promise<LocalModel> | null = null;

/** The device model, loaded once per page (a failed load is retried next time). */
export function deviceModel(): Promise<LocalModel> {
  modelPromise ??= loadLocalModel().catch((err: unknown) => {
    modelPromise = null;
    throw err;
  });
  return modelPromise;
}

export function deviceModeOn(): boolean {
  try {
    return localStorage.getItem(STORAGE_KEY) === 'on';
  } catch {
    return false;
  }
}

/** Sent on window when the switch changes: the header names the device's model when the server is away. */
export const DEVICE_MODE_CHANGED = 'hv:device-mode';

function setDeviceMode(on: boolean): void {
  try {
    localStorage.setItem(STORAGE_KEY, on ? 'on' : 'off');
  } catch {
    // Private modes may refuse storage: the switch still works for this visit.
  }
  window.dispatchEvent(new CustomEvent(DEVICE_MODE_CHANGED));
}

/** The switch, checked as last left; turning it on starts the model download at once. */
/** The switch; `onChange` lets the page show only what applies (now, and on every change). */
export function deviceSwitch(onChange: (on: boolean) => void = () => undefined): HTMLElement {
  const box = h('input', { type: 'checkbox', id: 'on-device', 'aria-describedby': 'on-device-hint' });
  box.checked = deviceModeOn();
  onChange(box.checked);
  box.addEventListener('change', () => {
    setDeviceMode(box.checked);
    onChange(box.checked);
    if (box.checked) void deviceModel().catch(() => undefined);
  });
  if (box.checked) void deviceModel().catch(() => undefined);
  return h(
    'p',
    { class: 'option' },
    box,
    h('label', { for: 'on-device' }, ' Analyse on this device'),
    h(
      'span',
      { class: 'muted', id: 'on-device-hint' },
      ' — the images stay in this browser unless you save a result to the server; works offline after the first visit.',
    ),
  );
}

export function isDeviceCase(c: { id: string }): boolean {
  return c.id.startsWith(DEVICE_CASE_PREFIX);
}

let counter = 0;
/** The files of the last batch analysed here, by case id: what "save to the server" sends, if asked. */
const files = new Map<string, File>();

/**
 * Sends a case analysed here to the server, which analyses the image again with its own model and stores
 * that (its answer may differ from this device's where the two models do). Resolves to the stored case.
 */
export async function saveDeviceCase(id: string): Promise<CaseResult> {
  const file = files.get(id);
  if (!file) throw new Error('This image is no longer held by the page: analyse it again to save it.');
  const sent = await api.predict([file]);
  const stored = sent.cases[0];
  if (!stored) throw new Error('The server stored nothing.');
  if (isCaseError(stored)) throw new Error(stored.message);
  files.delete(id);
  return stored;
}

function toCase(file: File, a: LocalAnalysis, model: LocalModel): CaseResult {
  const id = `${DEVICE_CASE_PREFIX}${++counter}`;
  files.set(id, file);
  return {
    id,
    file: file.name,
    createdAt: new Date().toISOString(),
    label: a.label,
    confidence: a.confidence,
    probabilities: a.probabilities,
    needsReview: a.needsReview,
    reviewReasons: a.reviewReasons,
    ...(a.distance ? { distance: a.distance } : {}),
    cells: a.cells,
    ...(a.message ? { message: a.message } : {}),
    heatmapUrl: null,
    // The page shows the file itself: nothing was uploaded.
    imageUrl: URL.createObjectURL(file),
    width: a.width,
    height: a.height,
    model: { name: model.card.name, version: model.card.version, tta: false },
    review: null,
  } as CaseResult;
}

/** Analyses files one by one in this page; a file that cannot be read fails alone, as on the server. */
export async function predictOnDevice(chosen: File[], ctx: AppContext): Promise<PredictResponse> {
  const model = await deviceModel();
  if (ctx.classes.length === 0) ctx.classes = model.card.classes;
  const cases: PredictResponse['cases'] = [];
  const analysed: LocalAnalysis[] = [];
  // Only the shown batch can be saved: the page lets go of the files of earlier ones.
  files.clear();
  for (const file of chosen) {
    try {
      const a = await analyseFile(model, file);
      analysed.push(a);
      cases.push(toCase(file, a, model));
    } catch (err) {
      if (!(err instanceof HematoError)) throw err;
      cases.push({ file: file.name, error: err.code, message: err.message });
    }
  }
  return { cases, differential: differential(model.card.classes, analysed) };
}

/** Pixels across the page boundary (scripts and tests): RGB bytes as base64. */
export interface WirePixels {
  width: number;
  height: number;
  rgb: string;
}

function toBase64(bytes: Uint8Array): string {
  let bin = '';
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(bin);
}

function fromWire(p: WirePixels): RgbImage {
  return { width: p.width, height: p.height, data: Uint8Array.from(atob(p.rgb), (c) => c.charCodeAt(0)) };
}

/**
 * In-page entry for scripts and tests, raw numbers out: a file's whole analysis on this device, and its
 * stages alone (the browser's decode; the network on given crops) so parity can be measured stage by stage.
 */
export interface DeviceApi {
  analyse(file: Blob): Promise<LocalAnalysis>;
  decode(file: Blob): Promise<WirePixels>;
  classify(crops: WirePixels[]): Promise<Prediction[]>;
}

declare global {
  interface Window {
    hematovisionDevice?: DeviceApi;
  }
}

window.hematovisionDevice = {
  analyse: async (file) => analyseFile(await deviceModel(), file),
  decode: async (file) => {
    const { width, height, data } = await decodeFile(file);
    return { width, height, rgb: toBase64(data) };
  },
  classify: async (crops) => classifyCrops(await deviceModel(), crops.map(fromWire)),
};

// The service worker exists only in a build (vite.config.ts writes sw.js); a dev server answers 404, ignored.
if ('serviceWorker' in navigator && location.protocol !== 'file:') {
  navigator.serviceWorker.register('./sw.js').catch(() => undefined);
}
