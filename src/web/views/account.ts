/**
 * "Your account" (#/account, from the name in the header): who is signed in, and a form to change one's own
 * password (PUT /account/password). The server ends the account's other sessions; this one stays.
 */
import { api } from '../api.js';
import type { AppContext, ViewHandle } from '../context.js';
import { h, replaceChildren } from '../dom.js';
import {
  checkPasswordChange,
  PASSWORD_MIN,
  passwordChangeError,
  type PasswordField,
  type PasswordProblem,
} from '../password-change.js';
import { announce } from '../status.js';

function passwordInput(id: string, autocomplete: string): HTMLInputElement {
  return h('input', { id, name: id, type: 'password', autocomplete, required: true, maxlength: 1024 });
}

function passwordForm(): HTMLFormElement {
  const current = passwordInput('account-current', 'current-password');
  const next = passwordInput('account-new', 'new-password');
  next.minLength = PASSWORD_MIN;
  next.setAttribute('aria-describedby', 'account-new-hint');
  const again = passwordInput('account-again', 'new-password');
  const fields: Record<PasswordField, HTMLInputElement> = { current, new: next, again };
  // One message beside the form (not live: the page's alert region reads it out once).
  const problem = h('p', { class: 'error-text', id: 'password-problem', hidden: true });
  const submit = h('button', { type: 'submit', class: 'btn btn--primary' }, 'Change password');
  const field = (id: string, label: string, input: HTMLInputElement, hint?: string) =>
    h(
      'div',
      { class: 'field' },
      h('label', { for: id }, label),
      input,
      hint ? h('p', { class: 'field-hint muted', id: `${id}-hint` }, hint) : null,
    );

  const show = (p: PasswordProblem | null): void => {
    for (const input of Object.values(fields)) input.removeAttribute('aria-invalid');
    problem.hidden = !p;
    problem.textContent = p?.message ?? '';
    if (!p) return;
    announce(p.message, 'error');
    if (p.field) {
      fields[p.field].setAttribute('aria-invalid', 'true');
      fields[p.field].setAttribute('aria-errormessage', 'password-problem');
      fields[p.field].focus();
      fields[p.field].select();
    }
  };

  const form = h(
    'form',
    { class: 'auth-form', 'aria-labelledby': 'password-heading', novalidate: true },
    field('account-current', 'Current password', current),
    field(
      'account-new',
      'New password',
      next,
      `At least ${PASSWORD_MIN} characters; a phrase of several words is easiest to remember.`,
    ),
    field('account-again', 'New password again', again),
    problem,
    h('div', { class: 'form-actions' }, submit),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    // Checked here (novalidate): one clear message in the page instead of the browser's bubble.
    const local = checkPasswordChange({ current: current.value, next: next.value, again: again.value });
    if (local) return show(local);
    show(null);
    submit.disabled = true;
    announce('Changing the password…', 'busy');
    void (async () => {
      try {
        await api.changePassword({ currentPassword: current.value, newPassword: next.value });
        form.reset();
        announce(
          'Password changed. Your other sessions were signed out; this one stays signed in.',
          'success',
        );
      } catch (err) {
        show(passwordChangeError(err));
      } finally {
        submit.disabled = false;
      }
    })();
  });
  return form;
}

export function renderAccount(main: HTMLElement, ctx: AppContext): ViewHandle {
  const account = ctx.account;
  const heading = h('h1', { id: 'page-heading', tabindex: '-1' }, 'Your account');
  if (!ctx.auth || !account) {
    replaceChildren(
      main,
      heading,
      h('p', null, 'Accounts are off on this server (AUTH=off): there is no password to change.'),
    );
    return {};
  }
  const row = (term: string, value: string) => [h('dt', null, term), h('dd', null, value)];
  replaceChildren(
    main,
    heading,
    h(
      'dl',
      { class: 'account-details' },
      row('Name on reviews and reports', account.displayName),
      row('Login name', account.name),
      row('Role', account.role),
      account.clinic ? row('Clinic', account.clinic) : null,
    ),
    h(
      'section',
      { class: 'card account-password', 'aria-labelledby': 'password-heading' },
      h('h2', { id: 'password-heading' }, 'Change password'),
      h(
        'p',
        { class: 'muted' },
        'Your other sessions (other browsers and devices) are signed out; this one stays signed in. ' +
          'API tokens keep working: revoke them apart.',
      ),
      passwordForm(),
    ),
  );
  return {};
}
