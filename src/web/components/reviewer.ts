/**
 * Who reviews or signs: with accounts on, the signed-in account (shown, not typed: the server takes it from
 * the session and refuses a typed name); with accounts off (AUTH=off), a name field remembered in this
 * browser, as before accounts existed.
 */
import type { AppContext } from '../context.js';
import { h } from '../dom.js';

const REVIEWER_KEY = 'hematovision.reviewer';

function remembered(): string {
  try {
    return localStorage.getItem(REVIEWER_KEY) ?? '';
  } catch {
    return '';
  }
}

function remember(name: string): void {
  try {
    localStorage.setItem(REVIEWER_KEY, name);
  } catch {
    // Private mode or storage disabled: the name simply is not prefilled next time.
  }
}

export interface ReviewerField {
  /** The field (a name input), or a line naming the account. */
  element: HTMLElement;
  /**
   * The name to send: undefined with accounts on (the server uses the account), the typed name with them
   * off, or null when it is missing (the field is then focused and the caller says so).
   */
  name(): string | undefined | null;
  /** After a successful save: remembers a typed name for next time. */
  saved(): void;
}

export function reviewerField(ctx: AppContext, id: string, label: string): ReviewerField {
  if (ctx.auth) {
    const who = ctx.account ? `${ctx.account.displayName} (${ctx.account.name})` : 'nobody';
    return {
      element: h(
        'p',
        { class: 'reviewer-account', id },
        h('span', { class: 'muted' }, `${label}: `),
        h('strong', null, who),
      ),
      name: () => undefined,
      saved: () => undefined,
    };
  }
  const input = h('input', {
    type: 'text',
    id,
    name: 'reviewer',
    required: true,
    maxlength: 200,
    autocomplete: 'name',
    value: remembered(),
  });
  return {
    element: h('div', { class: 'field' }, h('label', { for: id }, label), input),
    name() {
      input.value = input.value.trim();
      if (input.value) return input.value;
      input.focus();
      return null;
    },
    saved: () => remember(input.value.trim()),
  };
}
