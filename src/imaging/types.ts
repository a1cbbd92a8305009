/** An 8-bit RGB image, pixels interleaved row by row (no alpha). */
export interface RgbImage {
  width: number;
  height: number;
  /** length = width * height * 3 */
  data: Uint8Array;
}

/** An axis-aligned box in pixel coordinates of the image it was found in. */
export interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
  /** 0..1, how sure the locator is that this is one white cell. */
  score: number;
}
