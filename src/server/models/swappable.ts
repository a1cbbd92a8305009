/**
 * The analyser the routes hold: it forwards to the model loaded now, and a model activated later replaces it
 * without a restart. Calls that started on the old model finish on it; it is closed once they have.
 */
import type { AnalyzeOptions, HematoVision } from '../../pipeline.js';

interface Loaded {
  vision: HematoVision;
  inFlight: number;
  retired?: () => void;
}

export class SwappableVision implements HematoVision {
  private loaded: Loaded;

  constructor(readonly initial: HematoVision) {
    this.loaded = { vision: initial, inFlight: 0 };
  }

  /** The model serving now (its card says which). */
  get current(): HematoVision {
    return this.loaded.vision;
  }

  get card() {
    return this.loaded.vision.card;
  }

  get hasTta() {
    return this.loaded.vision.hasTta;
  }

  reviewThreshold(tta?: boolean): number {
    return this.loaded.vision.reviewThreshold(tta);
  }

  analyze(input: Buffer | string, options?: AnalyzeOptions) {
    return this.using((v) => v.analyze(input, options));
  }

  analyzeBatch(inputs: (Buffer | string)[], options?: AnalyzeOptions) {
    return this.using((v) => v.analyzeBatch(inputs, options));
  }

  renderHeatmap(input: Buffer | string, data: Parameters<HematoVision['renderHeatmap']>[1]) {
    return this.using((v) => v.renderHeatmap(input, data));
  }

  interactive(): () => void {
    return this.loaded.vision.interactive?.() ?? (() => undefined);
  }

  private async using<T>(f: (v: HematoVision) => Promise<T>): Promise<T> {
    const l = this.loaded;
    l.inFlight++;
    try {
      return await f(l.vision);
    } finally {
      l.inFlight--;
      if (l.inFlight === 0) l.retired?.();
    }
  }

  /** Serves `next` from now on; the previous model closes once its last call has finished. */
  async swap(next: HematoVision): Promise<void> {
    const old = this.loaded;
    this.loaded = { vision: next, inFlight: 0 };
    if (old.vision === next) return;
    if (old.inFlight > 0) await new Promise<void>((resolve) => (old.retired = resolve));
    await old.vision.close();
  }

  /** Closes the model serving now. */
  async close(): Promise<void> {
    await this.loaded.vision.close();
  }

  /** Closes the model serving now unless it is the initial one (whoever made that closes it). */
  async closeSwapped(): Promise<void> {
    if (this.loaded.vision !== this.initial) await this.loaded.vision.close();
  }
}
