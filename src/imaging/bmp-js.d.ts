// bmp-js ships no types; only the decoder is used.
declare module 'bmp-js' {
  interface BmpDecoded {
    width: number;
    height: number;
    /** 4 bytes per pixel in [alpha, blue, green, red] order. */
    data: Buffer;
  }
  const bmp: { decode(buffer: Buffer): BmpDecoded };
  export default bmp;
}
