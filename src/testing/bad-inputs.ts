// Generated bad requests for the reliability suite: truncated and bit-flipped images of every format,
// decompression bombs, odd formats, hostile file names, malformed multipart bodies and malformed API calls.
// Deterministic (seeded), so a failure names an input that can be made again.
import sharp from 'sharp';
import { createRng, type Rng } from '../imaging/random.js';
import { writeBmp } from '../imaging/testing.js';
import { apiCalls, type BadRequest } from './bad-api-calls.js';

export type { BadRequest };
import { oneBitBmp } from './bmp.js';

const API = '/api/v1';
const BOUNDARY = '----hvReliability7MA4YWxkTrZu0gW';

/** A multipart body built by hand: file names and part headers go out byte for byte. */
export function multipartBody(
  parts: { field?: string; filename?: string | Buffer; type?: string; bytes: Buffer }[],
  boundary = BOUNDARY,
): Buffer {
  const chunks: Buffer[] = [];
  for (const p of parts) {
    const name =
      p.filename === undefined
        ? ''
        : Buffer.concat([Buffer.from('; filename="'), Buffer.from(p.filename), Buffer.from('"')]);
    chunks.push(
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${p.field ?? 'images'}"`),
      Buffer.from(name),
      Buffer.from(`\r\nContent-Type: ${p.type ?? 'application/octet-stream'}\r\n\r\n`),
      p.bytes,
      Buffer.from('\r\n'),
    );
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return Buffer.concat(chunks);
}

function predictOf(kind: string, label: string, body: Buffer, boundary = BOUNDARY, query = ''): BadRequest {
  return {
    kind,
    label,
    method: 'POST',
    path: `${API}/predict${query}`,
    headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
    body,
  };
}

function fileRequest(
  kind: string,
  label: string,
  bytes: Buffer,
  filename: string | Buffer = 'cell.img',
): BadRequest {
  return predictOf(kind, label, multipartBody([{ filename, bytes }]));
}

/** A blood-smear-like field with texture everywhere, so cutting or flipping a byte really damages pixels. */
async function baseImages(): Promise<Record<string, Buffer>> {
  const w = 160;
  const h = 120;
  const px = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const i = (y * w + x) * 3;
      const d = Math.hypot(x - 80, y - 60);
      const nucleus = d < 22;
      px[i] = nucleus ? 110 : 225 + ((x * 7 + y * 13) % 20);
      px[i + 1] = nucleus ? 40 : 185 + ((x * 11 + y * 3) % 25);
      px[i + 2] = nucleus ? 150 : 200 + ((x * 5 + y * 17) % 30);
    }
  const img = sharp(px, { raw: { width: w, height: h, channels: 3 } });
  return {
    jpeg: await img.clone().jpeg({ quality: 85 }).toBuffer(),
    png: await img.clone().png().toBuffer(),
    webp: await img.clone().webp({ quality: 80 }).toBuffer(),
    tiff: await img.clone().tiff({ compression: 'lzw' }).toBuffer(),
    bmp: writeBmp({ width: w, height: h, data: new Uint8Array(px) }, { bitsPerPixel: 24 }),
  };
}

function flip(bytes: Buffer, rng: Rng, flips: number, headerOnly: boolean): Buffer {
  const out = Buffer.from(bytes);
  for (let f = 0; f < flips; f++) {
    const at = Math.floor(rng() * (headerOnly ? Math.min(64, out.length) : out.length));
    out[at] ^= 1 << Math.floor(rng() * 8);
  }
  return out;
}

/** A PNG whose header claims width × height, with one tiny (wrong) IDAT: refused from the header. */
function forgedPng(width: number, height: number): Buffer {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (b: Buffer) => {
    let c = 0xffffffff;
    for (const x of b) c = crcTable[(c ^ x) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type: string, data: Buffer) => {
    const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const c = Buffer.alloc(4);
    c.writeUInt32BE(crc(td));
    return Buffer.concat([len, td, c]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', Buffer.from([0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01])),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

async function bombs(jpeg: Buffer): Promise<BadRequest[]> {
  const out: BadRequest[] = [];
  for (const [w, h] of [
    [100_000, 100_000],
    [65_535, 65_535],
    [50_001, 1_000],
    [1, 2_000_000_000],
    [0x7fffffff, 0x7fffffff],
    [7_072, 7_072],
  ])
    out.push(fileRequest('bomb', `PNG header ${w}x${h}`, forgedPng(w, h)));
  for (const [w, h, data] of [
    [100_000, 100_000, 4096],
    [0x7fffffff, 1, 4096],
    [7_000, 7_000, 4096],
    [-5, 10, 100],
    [10, -2147483648, 100],
  ])
    out.push(fileRequest('bomb', `BMP header ${w}x${h} with ${data} bytes`, oneBitBmp(w, h, data)));
  // Within the 50 MP limit and fully decodable: work the server must do without stalling everyone.
  out.push(fileRequest('bomb', '1-bit BMP 7000x7000 (49 MP, decoded)', oneBitBmp(7000, 7000)));
  const flat = await sharp({ create: { width: 7000, height: 7000, channels: 3, background: '#ddd' } })
    .png({ compressionLevel: 9 })
    .toBuffer();
  out.push(fileRequest('bomb', `flat PNG 7000x7000 (${flat.length} bytes)`, flat));
  // A real JPEG whose frame header (SOF0) is rewritten to claim 8000×7000.
  const jpegBig = Buffer.from(jpeg);
  const sof = jpegBig.indexOf(Buffer.from([0xff, 0xc0]));
  jpegBig.writeUInt16BE(7000, sof + 5);
  jpegBig.writeUInt16BE(8000, sof + 7);
  out.push(fileRequest('bomb', 'JPEG 8000x7000 (over 50 MP)', jpegBig));
  // A WebP (VP8X) header claiming a 16384×16384 canvas, and nothing after it.
  const vp8x = Buffer.alloc(30);
  vp8x.write('RIFF', 0, 'latin1');
  vp8x.writeUInt32LE(22, 4);
  vp8x.write('WEBPVP8X', 8, 'latin1');
  vp8x.writeUInt32LE(10, 16);
  vp8x.writeUIntLE(16383, 24, 3);
  vp8x.writeUIntLE(16383, 27, 3);
  const webpBig = vp8x;
  out.push(fileRequest('bomb', 'WebP 16383x16383', webpBig));
  return out;
}

function oddFormats(rng: Rng, base: Record<string, Buffer>): BadRequest[] {
  const named: [string, Buffer][] = [
    ['empty file', Buffer.alloc(0)],
    ['one byte', Buffer.from([0xff])],
    ['JPEG SOI only', Buffer.from([0xff, 0xd8, 0xff])],
    ['PNG signature only', Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])],
    ['BM only', Buffer.from('BM')],
    ['GIF', Buffer.from('R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7', 'base64')],
    [
      'SVG with script',
      Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'),
    ],
    [
      'SVG with XXE',
      Buffer.from(
        '<?xml version="1.0"?><!DOCTYPE s [<!ENTITY x SYSTEM "file:///etc/passwd">]><svg>&x;</svg>',
      ),
    ],
    ['PDF', Buffer.from('%PDF-1.7\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF')],
    ['HTML', Buffer.from('<!doctype html><html><body>not an image</body></html>')],
    ['JSON', Buffer.from('{"image": "cell.jpg"}')],
    ['ZIP', Buffer.from('504b0304140000000000', 'hex')],
    ['gzip', Buffer.from('1f8b0800000000000003030000000000000000', 'hex')],
    ['ICO', Buffer.from('00000100010010100000010020006804000016000000', 'hex')],
    ['HEIC ftyp', Buffer.concat([Buffer.from('000000186674797068656963', 'hex'), Buffer.alloc(40)])],
    ['AVIF ftyp', Buffer.concat([Buffer.from('000000206674797061766966', 'hex'), Buffer.alloc(40)])],
    ['JPEG XL', Buffer.from('ff0afa', 'hex')],
    ['Windows EXE', Buffer.concat([Buffer.from('MZ'), Buffer.alloc(200)])],
    ['ELF', Buffer.concat([Buffer.from('7f454c46', 'hex'), Buffer.alloc(100)])],
    ['UTF-16 text', Buffer.from('\ufeffhello', 'utf16le')],
    ['JPEG then garbage', Buffer.concat([base.jpeg.subarray(0, 200), Buffer.alloc(500, 0x41)])],
    ['PNG with JPEG body', Buffer.concat([base.png.subarray(0, 8), base.jpeg])],
    ['two JPEGs glued', Buffer.concat([base.jpeg, base.jpeg])],
    [
      'BMP with 16 bpp',
      (() => {
        const b = Buffer.from(base.bmp);
        b.writeUInt16LE(16, 28);
        return b;
      })(),
    ],
    [
      'BMP RLE8',
      (() => {
        const b = Buffer.from(base.bmp);
        b.writeUInt32LE(1, 30);
        return b;
      })(),
    ],
    [
      'BMP OS/2 header',
      (() => {
        const b = Buffer.from(base.bmp);
        b.writeUInt32LE(12, 14);
        return b;
      })(),
    ],
    [
      'BMP offset past end',
      (() => {
        const b = Buffer.from(base.bmp);
        b.writeUInt32LE(0xfffffff0, 10);
        return b;
      })(),
    ],
  ];
  for (let i = 0; i < 40; i++) {
    const n = 1 + Math.floor(rng() * 4000);
    named.push([`${n} random bytes`, Buffer.from(Array.from({ length: n }, () => Math.floor(rng() * 256)))]);
  }
  return named.map(([label, bytes]) => fileRequest('odd format', label, bytes));
}

const HOSTILE_NAMES: (string | Buffer)[] = [
  '../../../../tmp/hv-pwned.jpg',
  '..\\..\\..\\windows\\win.ini',
  '/etc/passwd',
  'C:\\boot.ini',
  '%2e%2e%2f%2e%2e%2fetc%2fpasswd',
  'a\u0000b.jpg',
  'line\r\nSet-Cookie: x=1.jpg',
  '\u202egpj.exe',
  '<script>alert(1)</script>.jpg',
  "=cmd|' /C calc'!A0.jpg",
  '+SUM(1;2).jpg',
  '"quoted".jpg',
  "it's.jpg",
  'x'.repeat(10_000) + '.jpg',
  '',
  ' ',
  '.',
  '..',
  'CON',
  'aux.jpg',
  '😀🩸.jpg',
  'ñandú über straße.jpg',
  '\u0007bell\u001b[31mred.jpg',
  Buffer.from([0xff, 0xfe, 0x80, 0x81, 0x2e, 0x6a, 0x70, 0x67]),
  Buffer.from([0xc0, 0xaf, 0xc0, 0xaf, 0x65, 0x74, 0x63]),
];

function hostileNames(rng: Rng, jpeg: Buffer): BadRequest[] {
  const out: BadRequest[] = [];
  for (const name of HOSTILE_NAMES)
    out.push(fileRequest('hostile name', `name ${JSON.stringify(String(name)).slice(0, 60)}`, jpeg, name));
  for (let i = 0; out.length < 100; i++) {
    const len = 1 + Math.floor(rng() * 300);
    const bytes = Buffer.from(
      Array.from({ length: len }, () => 1 + Math.floor(rng() * 255)).filter((b) => b !== 0x22),
    );
    out.push(fileRequest('hostile name', `random name bytes #${i}`, jpeg, bytes));
  }
  return out;
}

function malformedMultipart(rng: Rng, jpeg: Buffer): BadRequest[] {
  const good = multipartBody([{ filename: 'a.jpg', bytes: jpeg }]);
  const out: BadRequest[] = [];
  const add = (label: string, body: Buffer, contentType?: string, extra: Record<string, string> = {}) =>
    out.push({
      kind: 'malformed multipart',
      label,
      method: 'POST',
      path: `${API}/predict`,
      headers: { 'content-type': contentType ?? `multipart/form-data; boundary=${BOUNDARY}`, ...extra },
      body,
    });
  for (let i = 0; i < 80; i++) {
    const cut = Math.floor(rng() * good.length);
    add(`body cut at ${cut} of ${good.length}`, good.subarray(0, cut));
  }
  for (let i = 0; i < 40; i++)
    add(`body with ${1 + (i % 8)} flipped bytes #${i}`, flip(good, rng, 1 + (i % 8), false));
  add('no boundary parameter', good, 'multipart/form-data');
  add('other boundary', good, 'multipart/form-data; boundary=nope');
  add('boundary of 200 chars', good, `multipart/form-data; boundary=${'b'.repeat(200)}`);
  add('empty boundary', good, 'multipart/form-data; boundary=');
  add('multipart/mixed', good, `multipart/mixed; boundary=${BOUNDARY}`);
  add('multipart/related', good, `multipart/related; boundary=${BOUNDARY}`);
  add('no closing boundary', good.subarray(0, good.length - BOUNDARY.length - 6));
  add('LF line endings', Buffer.from(good.toString('latin1').replace(/\r\n/g, '\n'), 'latin1'));
  add('preamble garbage', Buffer.concat([Buffer.alloc(5000, 0x41), Buffer.from('\r\n'), good]));
  add('epilogue garbage', Buffer.concat([good, Buffer.alloc(5000, 0x42)]));
  add('empty body', Buffer.alloc(0));
  add('only the closing boundary', Buffer.from(`--${BOUNDARY}--\r\n`));
  add(
    'part without Content-Disposition',
    Buffer.from(`--${BOUNDARY}\r\nContent-Type: image/jpeg\r\n\r\nxx\r\n--${BOUNDARY}--\r\n`),
  );
  add(
    'part header of 200 kB',
    Buffer.from(`--${BOUNDARY}\r\nX-Long: ${'h'.repeat(200_000)}\r\n\r\nxx\r\n--${BOUNDARY}--\r\n`),
  );
  add('wrong field', multipartBody([{ field: 'file', filename: 'a.jpg', bytes: jpeg }]));
  add('text in images', multipartBody([{ bytes: Buffer.from('not a file') }]));
  add(
    '60 files',
    multipartBody(Array.from({ length: 60 }, (_, i) => ({ filename: `${i}.jpg`, bytes: jpeg }))),
  );
  add(
    '40 text fields',
    multipartBody(Array.from({ length: 40 }, (_, i) => ({ field: `f${i}`, bytes: Buffer.from('v') }))),
  );
  add('field name 10 kB', multipartBody([{ field: 'n'.repeat(10_000), filename: 'a.jpg', bytes: jpeg }]));
  add('JSON sent as multipart', Buffer.from('{"images": []}'));
  add('urlencoded', Buffer.from('images=abc'), 'application/x-www-form-urlencoded');
  add('octet-stream', jpeg, 'application/octet-stream');
  add('image/jpeg body', jpeg, 'image/jpeg');
  add('no content type', good, '');
  add('Content-Length smaller than the body', good, undefined, {
    'content-length': String(Math.floor(good.length / 2)),
  });
  add('charset in boundary', good, `multipart/form-data; charset=utf-7; boundary="${BOUNDARY}"`);
  const head = (disposition: string) =>
    Buffer.concat([
      Buffer.from(`--${BOUNDARY}\r\n${disposition}\r\n\r\n`),
      jpeg,
      Buffer.from(`\r\n--${BOUNDARY}--\r\n`),
    ]);
  add(
    'duplicate Content-Disposition',
    head(
      'Content-Disposition: form-data; name="images"; filename="a.jpg"\r\nContent-Disposition: form-data; name="x"',
    ),
  );
  add(
    'filename* only',
    head(`Content-Disposition: form-data; name="images"; filename*=UTF-8''%E2%80%AE%2e%2e%2fx.jpg`),
  );
  for (const q of [
    '?tta=maybe',
    '?specimen=',
    `?specimen=${'s'.repeat(300)}`,
    '?specimen=NOPE-404',
    '?x=1',
    '?tta=true&tta=false',
  ])
    out.push(predictOf('malformed multipart', `query ${q.slice(0, 40)}`, good, BOUNDARY, q));
  return out;
}

/** At least 1,000 bad requests, in a fixed order for a given seed. */
export async function badRequests(seed = 15): Promise<BadRequest[]> {
  const rng = createRng(seed);
  const base = await baseImages();
  const out: BadRequest[] = [];
  for (const [format, bytes] of Object.entries(base)) {
    for (let i = 0; i < 40; i++) {
      // Cuts near the start (headers) and anywhere in the data.
      const cut = i < 10 ? i * 3 : Math.floor(rng() * (bytes.length - 1));
      out.push(
        fileRequest(
          'truncated',
          `${format} cut at ${cut} of ${bytes.length}`,
          bytes.subarray(0, cut),
          `t.${format}`,
        ),
      );
    }
    for (let i = 0; i < 64; i++) {
      const flips = 1 + Math.floor(rng() * 16);
      const headerOnly = i % 3 === 0;
      out.push(
        fileRequest(
          'bit-flipped',
          `${format}, ${flips} bits flipped${headerOnly ? ' in the header' : ''} #${i}`,
          flip(bytes, rng, flips, headerOnly),
          `f.${format}`,
        ),
      );
    }
  }
  out.push(...(await bombs(base.jpeg)));
  out.push(...oddFormats(rng, base));
  out.push(...hostileNames(rng, base.jpeg));
  out.push(...malformedMultipart(rng, base.jpeg));
  out.push(...apiCalls(rng));
  return out;
}
