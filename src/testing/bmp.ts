// A forged 1-bit BMP, for tests and benchmarks that need an expensive image or a lying header.

/** Bytes of one pixel row of a 1-bit BMP: one bit per pixel, each row padded to 4 bytes. */
export function oneBitRowBytes(width: number): number {
  return Math.ceil(width / 32) * 4;
}

/**
 * A 1-bit BMP (two-colour palette, black and white) whose header claims width × height, followed by
 * `dataBytes` of pixels: by default the whole pixel array, so it decodes. Such a file is tiny on the wire
 * yet is decoded in JavaScript (bmp-js), the slowest image there is per byte, which is why the fairness
 * benchmark, the prepare-pool test and the reliability suite's decompression bombs use it. A forged header
 * (negative, huge or short of data) passes `dataBytes` itself. Header fields not written stay 0, which for
 * a BMP means "no compression" and "size not given".
 */
export function oneBitBmp(width: number, height: number, dataBytes = oneBitRowBytes(width) * height): Buffer {
  const offset = 14 + 40 + 8; // file header, BITMAPINFOHEADER, two palette entries
  const buf = Buffer.alloc(offset + dataBytes);
  buf.fill(0x55, offset); // alternating columns, so the decoded image is not blank
  buf.write('BM', 0, 'latin1');
  buf.writeUInt32LE(buf.length, 2);
  buf.writeUInt32LE(offset, 10);
  buf.writeUInt32LE(40, 14);
  buf.writeInt32LE(width, 18);
  buf.writeInt32LE(height, 22);
  buf.writeUInt16LE(1, 26); // planes
  buf.writeUInt16LE(1, 28); // bits per pixel
  buf.writeUInt32LE(2, 46); // colours in the palette
  buf.set([0, 0, 0, 0, 255, 255, 255, 0], 54);
  return buf;
}
