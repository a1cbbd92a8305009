import { describe, expect, it } from 'vitest';
import { authFromEnv, isLoopback } from './env.js';

describe('AUTH from the environment', () => {
  it('is on by default and off only on a loopback address', () => {
    expect(authFromEnv({}, '0.0.0.0')).toBe('on');
    expect(authFromEnv({ AUTH: 'on' }, '0.0.0.0')).toBe('on');
    for (const host of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost', '::ffff:127.0.0.1'])
      expect(authFromEnv({ AUTH: 'off' }, host), host).toBe('off');
    for (const host of ['0.0.0.0', '::', '192.168.1.10', 'lab.example.org', '::ffff:10.0.0.1']) {
      expect(isLoopback(host), host).toBe(false);
      expect(() => authFromEnv({ AUTH: 'off' }, host), host).toThrow(/only on a loopback address/);
    }
    expect(() => authFromEnv({ AUTH: 'maybe' }, '127.0.0.1')).toThrow(/AUTH must be on or off/);
  });
});
