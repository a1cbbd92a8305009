/**
 * The change-password form's rules and messages, apart from the DOM so they can be unit-tested in Node. The
 * length rule is the API's own constant: the form refuses exactly what the server would.
 */
import { PASSWORD_MIN } from '../api/constants.js';
import { ApiError } from './api.js';

export { PASSWORD_MIN };

/** Which field a message is about, so the form can mark and focus it. */
export type PasswordField = 'current' | 'new' | 'again';

export interface PasswordProblem {
  field: PasswordField | null;
  message: string;
}

/** Checked before sending: the problems the server would refuse, and the typo it cannot see. */
export function checkPasswordChange(input: {
  current: string;
  next: string;
  again: string;
}): PasswordProblem | null {
  if (!input.current) return { field: 'current', message: 'Type your current password.' };
  if (input.next.length < PASSWORD_MIN)
    return {
      field: 'new',
      message: `The new password is too short: at least ${PASSWORD_MIN} characters (it has ${input.next.length}).`,
    };
  if (input.next !== input.again)
    return { field: 'again', message: 'The two new passwords differ: type the same password twice.' };
  if (input.next === input.current)
    return { field: 'new', message: 'The new password is the current one: choose another.' };
  return null;
}

/** "Retry in 754 s." → "13 minutes": the server's wait, in words a person reads at a glance. */
function waitText(message: string): string | null {
  const m = /Retry in (\d+) s/.exec(message);
  if (!m) return null;
  const s = Number(m[1]);
  if (s < 90) return `${s} seconds`;
  return `${Math.ceil(s / 60)} minutes`;
}

/** The server's refusal, said for this form; nothing was changed in any of these cases. */
export function passwordChangeError(err: unknown): PasswordProblem {
  if (err instanceof ApiError) {
    if (err.status === 403 && err.code === 'wrong_password')
      return { field: 'current', message: 'The current password is wrong. Nothing was changed.' };
    if (err.status === 429) {
      const wait = waitText(err.message);
      return {
        field: null,
        message:
          'Too many attempts to change the password. Nothing was changed; ' +
          (wait ? `try again in ${wait}.` : 'wait a while and try again.'),
      };
    }
    if (err.status === 400) return { field: 'new', message: `${err.message} Nothing was changed.` };
    if (err.status === 401)
      return { field: null, message: 'You are signed out. Sign in again to change your password.' };
  }
  return {
    field: null,
    message: `The password could not be changed: ${err instanceof Error ? err.message : String(err)}`,
  };
}
