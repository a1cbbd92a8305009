/**
 * First-start page: the one-time link the server printed on its console opens it (#/setup?token=…); it
 * creates the admin account and signs it in.
 */
import { PASSWORD_MIN } from '../../api/constants.js';
import { api } from '../api.js';
import type { ViewHandle } from '../context.js';
import { h, replaceChildren } from '../dom.js';
import { announce, errorMessage } from '../status.js';

export function renderSetup(main: HTMLElement, query: URLSearchParams, onDone: () => void): ViewHandle {
  const token = query.get('token') ?? '';
  const field = (id: string, label: string, input: HTMLInputElement, hint?: string) =>
    h(
      'div',
      { class: 'field' },
      h('label', { for: id }, label),
      input,
      hint ? h('p', { class: 'field-hint muted' }, hint) : null,
    );
  const name = h('input', {
    id: 'setup-name',
    autocomplete: 'username',
    required: true,
    pattern: '[A-Za-z0-9._@\\-]+',
    maxlength: 64,
  });
  const displayName = h('input', {
    id: 'setup-display',
    autocomplete: 'name',
    required: true,
    maxlength: 200,
  });
  const password = h('input', {
    id: 'setup-password',
    type: 'password',
    autocomplete: 'new-password',
    required: true,
    minlength: PASSWORD_MIN,
  });
  const again = h('input', {
    id: 'setup-again',
    type: 'password',
    autocomplete: 'new-password',
    required: true,
  });
  const submit = h('button', { type: 'submit', class: 'btn btn--primary' }, 'Create admin account');
  const form = h(
    'form',
    { class: 'auth-form' },
    field('setup-name', 'Login name', name, 'Letters, digits and . _ @ -'),
    field('setup-display', 'Full name', displayName, 'Shown on reviews and signed reports.'),
    field('setup-password', 'Password', password, `At least ${PASSWORD_MIN} characters.`),
    field('setup-again', 'Password again', again),
    h('div', { class: 'form-actions' }, submit),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    again.setCustomValidity(again.value === password.value ? '' : 'The two passwords differ.');
    if (!form.reportValidity()) return;
    submit.disabled = true;
    void (async () => {
      try {
        await api.setup({
          token,
          name: name.value.trim(),
          displayName: displayName.value.trim(),
          password: password.value,
        });
        announce('Admin account created; you are signed in.', 'success');
        onDone();
      } catch (err) {
        announce(errorMessage(err), 'error');
        submit.disabled = false;
      }
    })();
  });
  replaceChildren(
    main,
    h('h1', { id: 'page-heading', tabindex: '-1' }, 'Set up HematoVision'),
    token
      ? h(
          'p',
          null,
          'No account exists yet. Create the administrator’s account; it then creates the others (',
          h('code', null, 'hematovision users add'),
          ', or POST /api/v1/accounts).',
        )
      : h(
          'p',
          { class: 'error-text' },
          'Open the setup link the server printed on its console when it started (it carries a one-time token).',
        ),
    token ? form : null,
  );
  return {};
}
