// The change-password form's checks and messages: the length rule is the API's, and each refusal of
// PUT /account/password is said for what it is.
import { describe, expect, it } from 'vitest';
import { PASSWORD_MIN } from '../api/index.js';
import { PasswordChange } from '../api/accounts.js';
import { ApiError } from './api.js';
import { checkPasswordChange, passwordChangeError } from './password-change.js';

const OK = 'a long new passphrase';

describe('checkPasswordChange', () => {
  it('takes the minimum length from the API schema', () => {
    expect(PasswordChange.properties.newPassword.minLength).toBe(PASSWORD_MIN);
    const atMin = 'x'.repeat(PASSWORD_MIN);
    const short = 'x'.repeat(PASSWORD_MIN - 1);
    expect(checkPasswordChange({ current: 'old one', next: atMin, again: atMin })).toBeNull();
    expect(checkPasswordChange({ current: 'old one', next: short, again: short })).toEqual({
      field: 'new',
      message: `The new password is too short: at least ${PASSWORD_MIN} characters (it has ${PASSWORD_MIN - 1}).`,
    });
  });

  it('wants the current password, the same new one twice, and a new one that differs', () => {
    expect(checkPasswordChange({ current: '', next: OK, again: OK })?.field).toBe('current');
    expect(checkPasswordChange({ current: 'old', next: OK, again: `${OK} ` })).toMatchObject({
      field: 'again',
      message: expect.stringMatching(/differ/),
    });
    expect(checkPasswordChange({ current: OK, next: OK, again: OK })).toMatchObject({
      field: 'new',
      message: expect.stringMatching(/is the current one/),
    });
  });
});

describe('passwordChangeError', () => {
  it('says a wrong current password is wrong, on the current field', () => {
    expect(
      passwordChangeError(new ApiError('The current password is wrong.', 403, 'wrong_password')),
    ).toEqual({
      field: 'current',
      message: 'The current password is wrong. Nothing was changed.',
    });
  });

  it('says rate limiting is a wait, in minutes when long', () => {
    const limited = (s: number) =>
      passwordChangeError(
        new ApiError(
          `Too many password changes: at most 10 per 15 min. Retry in ${s} s.`,
          429,
          'too_many_attempts',
        ),
      );
    expect(limited(754)).toEqual({
      field: null,
      message: 'Too many attempts to change the password. Nothing was changed; try again in 13 minutes.',
    });
    expect(limited(30).message).toMatch(/try again in 30 seconds\.$/);
    expect(passwordChangeError(new ApiError('429 Too Many Requests', 429, 'http_error')).message).toMatch(
      /wait a while and try again/,
    );
  });

  it('passes on the server’s own reason for a refused new password, and network failures', () => {
    expect(
      passwordChangeError(
        new ApiError('The new password is the current one: choose another.', 400, 'weak_password'),
      ),
    ).toMatchObject({ field: 'new', message: expect.stringMatching(/^The new password is the current one/) });
    expect(passwordChangeError(new ApiError('The server cannot be reached.', 0, 'network')).message).toBe(
      'The password could not be changed: The server cannot be reached.',
    );
  });
});
