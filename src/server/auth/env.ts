/** AUTH from the environment: accounts on (the default), or off, which only a loopback address may have. */
import { isIP } from 'node:net';
import { HematoError } from '../../errors.js';

/** 127.0.0.0/8, ::1 (also as ::ffff:127.x) and localhost: only this machine can connect. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h === '::1') return true;
  const v4 = h.startsWith('::ffff:') ? h.slice(7) : h;
  return isIP(v4) === 4 && v4.startsWith('127.');
}

export function authFromEnv(env: Record<string, string | undefined>, host: string): 'on' | 'off' {
  const raw = (env.AUTH ?? '').trim().toLowerCase();
  if (raw === '' || raw === 'on' || raw === '1') return 'on';
  if (raw !== 'off' && raw !== '0')
    throw new HematoError(`AUTH must be on or off, not "${env.AUTH}".`, 'bad_config');
  if (!isLoopback(host))
    throw new HematoError(
      `AUTH=off is allowed only on a loopback address (HOST=127.0.0.1), not HOST=${host}: anyone who can ` +
        'reach the port would act as an admin. Keep accounts on (create users with `hematovision users add`).',
      'bad_config',
    );
  return 'off';
}

/** The warning a server with accounts off prints: loud, so nobody mistakes it for a deployment. */
export const AUTH_OFF_WARNING = [
  '',
  '!!! ACCOUNTS ARE OFF (AUTH=off) !!!',
  '!!! Anyone who can connect to this machine acts as an admin: reads every case, reviews under any name,',
  '!!! deletes. Only for a single-user workstation; unset AUTH to require sign-in.',
  '',
].join('\n');
