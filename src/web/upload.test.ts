import { describe, expect, it } from 'vitest';
import { MAX_FILE_BYTES, screenUploads } from './upload.js';

describe('screenUploads', () => {
  it('keeps images within the size limit and refuses, by name, what the server would refuse', () => {
    const files = [
      { name: 'a.jpg', size: 1000, type: 'image/jpeg' },
      { name: 'huge.png', size: MAX_FILE_BYTES + 1, type: 'image/png' },
      { name: 'notes.pdf', size: 100, type: 'application/pdf' },
      { name: 'scan.tif', size: 100, type: '' }, // some systems give no type: the name decides
    ];
    const { ok, refused } = screenUploads(files);
    expect(ok.map((f) => f.name)).toEqual(['a.jpg', 'scan.tif']);
    expect(refused.map((r) => [r.file, r.error])).toEqual([
      ['huge.png', 'file_too_large'],
      ['notes.pdf', 'unsupported_format'],
    ]);
    expect(refused[0].message).toMatch(/at most 20 MB/);
  });
});
