import type { FastifyBaseLogger } from 'fastify';
import { HematoError } from '../errors.js';
import type { HematoVision } from '../pipeline.js';
import { notFound } from './http-errors.js';
import type { CaseStore, StoredCase } from './store/index.js';

/**
 * A case's heat-map PNG: the stored file, or drawn from the stored maps on first request and stored.
 * Concurrent first requests of one case share one drawing.
 */
export class HeatmapRenderer {
  /** case id → render in flight. */
  private readonly rendering = new Map<string, Promise<Buffer>>();

  constructor(
    private readonly store: CaseStore,
    private readonly vision: HematoVision,
  ) {}

  async png(c: StoredCase, log: FastifyBaseLogger): Promise<Buffer> {
    if (!c.heatmapSha256 && !c.hasHeatmapData) {
      throw new HematoError(
        `Case ${c.id} has no heat map: ${c.message ?? 'the model produced none for it'}`,
        'not_found',
        404,
      );
    }
    return (await this.store.readHeatmap(c)) ?? (await this.renderOnce(c, log));
  }

  private renderOnce(c: StoredCase, log: FastifyBaseLogger): Promise<Buffer> {
    let job = this.rendering.get(c.id);
    if (!job) {
      job = this.renderAndStore(c, log).finally(() => this.rendering.delete(c.id));
      this.rendering.set(c.id, job);
    }
    return job;
  }

  private async renderAndStore(c: StoredCase, log: FastifyBaseLogger): Promise<Buffer> {
    const data = await this.store.readHeatmapData(c.id);
    if (!data) throw notFound(c.id); // deleted since it was looked up
    const png = await this.vision.renderHeatmap(await this.store.readImage(c), data);
    let attached: StoredCase | undefined | null = null;
    try {
      // Stored so that the next request is a file read.
      attached = await this.store.attachHeatmap(c.id, png);
    } catch (err) {
      // It can be drawn again from the stored maps: serve it anyway.
      log.warn({ err, caseId: c.id }, 'could not store a rendered heat map');
    }
    if (attached === undefined) throw notFound(c.id); // deleted while it was drawn
    return png;
  }
}
