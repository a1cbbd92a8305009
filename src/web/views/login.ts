/** Sign-in page: name and password; on success the app starts again, signed in, where it was. */
import { api } from '../api.js';
import type { ViewHandle } from '../context.js';
import { h, replaceChildren } from '../dom.js';
import { announce, errorMessage } from '../status.js';

export function renderLogin(main: HTMLElement, onSignedIn: () => void): ViewHandle {
  const name = h('input', { id: 'login-name', name: 'username', autocomplete: 'username', required: true });
  const password = h('input', {
    id: 'login-password',
    name: 'password',
    type: 'password',
    autocomplete: 'current-password',
    required: true,
  });
  const submit = h('button', { type: 'submit', class: 'btn btn--primary' }, 'Sign in');
  const form = h(
    'form',
    { class: 'auth-form', 'aria-labelledby': 'page-heading' },
    h('div', { class: 'field' }, h('label', { for: 'login-name' }, 'Name'), name),
    h('div', { class: 'field' }, h('label', { for: 'login-password' }, 'Password'), password),
    h('div', { class: 'form-actions' }, submit),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    if (!form.reportValidity()) return;
    submit.disabled = true;
    void (async () => {
      try {
        await api.signIn(name.value.trim(), password.value);
        onSignedIn();
      } catch (err) {
        announce(errorMessage(err), 'error');
        password.value = '';
        password.focus();
        submit.disabled = false;
      }
    })();
  });
  replaceChildren(
    main,
    h('h1', { id: 'page-heading', tabindex: '-1' }, 'Sign in'),
    h('p', { class: 'muted' }, 'Your lab’s administrator gives you an account.'),
    form,
  );
  name.focus();
  return {};
}
