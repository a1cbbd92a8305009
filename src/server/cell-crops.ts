/**
 * A cell's crop for the review gallery and the report: the square the classifier saw (imaging's cropSquare,
 * with a margin so the neighbourhood shows), scaled to at most CROP_SIZE. Crops are cached by case and cell
 * (a few KB each; a gallery asks for the same ones again) and the decoded images of the last few cases are
 * kept, since the cells of one image are asked for together.
 */
import sharp from 'sharp';
import { decodeImage, type DecodedImage } from '../imaging/decode.js';
import { cropSquare } from '../imaging/preprocess.js';
import type { CaseStore, StoredCase } from './store/index.js';

export const CROP_SIZE = 160;
const PADDING = 0.2;
const CACHED_CROPS = 1000;
const CACHED_IMAGES = 4;

export class CellCrops {
  private readonly crops = new Map<string, Promise<Buffer>>();
  private readonly images = new Map<string, Promise<DecodedImage>>();

  constructor(private readonly store: CaseStore) {}

  /** PNG of cell `index` (an image without cells: index 0 is the whole image). The caller checks the index. */
  png(c: StoredCase, index: number): Promise<Buffer> {
    const key = `${c.id}:${index}`;
    let crop = this.crops.get(key);
    if (crop) {
      // Most recently used last.
      this.crops.delete(key);
      this.crops.set(key, crop);
      return crop;
    }
    crop = this.render(c, index);
    this.crops.set(key, crop);
    crop.catch(() => this.crops.delete(key));
    if (this.crops.size > CACHED_CROPS) this.crops.delete(this.crops.keys().next().value as string);
    return crop;
  }

  /** Drops a deleted case's crops. */
  forget(caseId: string): void {
    for (const key of this.crops.keys()) if (key.startsWith(`${caseId}:`)) this.crops.delete(key);
    this.images.delete(caseId);
  }

  private async render(c: StoredCase, index: number): Promise<Buffer> {
    const img = await this.decoded(c);
    const cell = c.cells[index];
    const square = cell ? cropSquare(img, cell.box, PADDING) : img;
    return sharp(Buffer.from(square.data.buffer, square.data.byteOffset, square.data.byteLength), {
      raw: { width: square.width, height: square.height, channels: 3 },
    })
      .resize(CROP_SIZE, CROP_SIZE, { fit: 'inside', withoutEnlargement: true })
      .png()
      .toBuffer();
  }

  private decoded(c: StoredCase): Promise<DecodedImage> {
    let img = this.images.get(c.id);
    if (!img) {
      img = this.store.readImage(c).then((bytes) => decodeImage(bytes));
      this.images.set(c.id, img);
      img.catch(() => this.images.delete(c.id));
      if (this.images.size > CACHED_IMAGES) this.images.delete(this.images.keys().next().value as string);
    }
    return img;
  }
}
