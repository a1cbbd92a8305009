// The header's model line: the server's model while it answers, the device's own copy when the server is
// away and "analyse on this device" runs it, "unavailable" only when neither can analyse.
import { describe, expect, it } from 'vitest';
import type { Health } from './api.js';
import { modelHeader } from './model-header.js';

const card = { name: 'hematovision-wbc', version: '2.0.0', classes: ['eosinophil', 'lymphocyte'] };
const health = (status: 'ok' | 'degraded') =>
  ({ status, model: { ...card, tta: true } }) as unknown as Health;

describe('modelHeader', () => {
  it('names the server’s model while the server answers, device mode or not', () => {
    expect(modelHeader(health('ok'), card)).toEqual({
      text: 'Model: hematovision-wbc 2.0.0',
      title: 'Classes: eosinophil, lymphocyte',
      state: 'ok',
    });
    expect(modelHeader(health('degraded')).state).toBe('degraded');
  });

  it('offline with the device model running: names it, on this device, not "unavailable"', () => {
    const h = modelHeader(null, card);
    expect(h).toMatchObject({ text: 'Model: hematovision-wbc 2.0.0 (on this device)', state: 'device' });
    expect(h.title).toMatch(/analysed in this browser.*Classes: eosinophil, lymphocyte/);
    expect(modelHeader(null, 'loading')).toMatchObject({ state: 'loading' });
  });

  it('unavailable only when nothing can analyse', () => {
    expect(modelHeader(null)).toMatchObject({ text: 'Model: unavailable', state: 'down' });
    expect(modelHeader(null, null)).toMatchObject({ text: 'Model: unavailable', state: 'down' });
  });
});
