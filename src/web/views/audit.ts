/**
 * Audit page (admins): the append-only trail of who created, reviewed, signed, exported, deleted or
 * restored what, newest first; a deleted case or specimen can be restored from its entry.
 */
import { AUDIT_ACTIONS } from '../../api/constants.js';
import { api, type AuditList } from '../api.js';
import type { ViewHandle } from '../context.js';
import { dataTable, h, replaceChildren } from '../dom.js';
import { formatDateTime } from '../format.js';
import { caseHref, specimenHref } from '../router.js';
import { announce, errorMessage } from '../status.js';

const PAGE = 100;

export function renderAudit(main: HTMLElement): ViewHandle {
  let offset = 0;
  let action = '';
  const filter = h(
    'select',
    { id: 'audit-action', class: 'audit-filter' },
    ['', ...AUDIT_ACTIONS].map((a) => h('option', { value: a }, a || 'Every action')),
  );
  const body = h('div', { 'aria-live': 'polite' });
  filter.addEventListener('change', () => {
    action = filter.value;
    offset = 0;
    void load();
  });

  function target(e: AuditList['entries'][number]): HTMLElement | string {
    if (e.targetType === 'case' && e.action !== 'delete')
      return h('a', { href: caseHref(e.targetId) }, `case ${e.targetId.slice(0, 8)}`);
    if (e.targetType === 'specimen' && e.action !== 'delete')
      return h('a', { href: specimenHref(e.targetId) }, `specimen ${e.targetId}`);
    return `${e.targetType} ${e.targetType === 'case' ? e.targetId.slice(0, 8) : e.targetId}`;
  }

  function restoreButton(e: AuditList['entries'][number]): HTMLElement | null {
    if (e.action !== 'delete' || (e.targetType !== 'case' && e.targetType !== 'specimen')) return null;
    const what = e.targetType === 'case' ? 'Case' : 'Specimen';
    const btn = h('button', { type: 'button', class: 'btn btn--secondary btn--small' }, 'Restore');
    btn.addEventListener('click', () => {
      btn.disabled = true;
      void (async () => {
        try {
          await (e.targetType === 'case' ? api.restoreCase(e.targetId) : api.restoreSpecimen(e.targetId));
          announce(`${what} restored.`, 'success');
          await load();
        } catch (err) {
          announce(errorMessage(err), 'error');
          btn.disabled = false;
        }
      })();
    });
    return btn;
  }

  async function load(): Promise<void> {
    try {
      const list = await api.audit({ action: action || undefined, limit: PAGE, offset });
      const more = h(
        'button',
        { type: 'button', class: 'btn btn--secondary', disabled: offset + PAGE >= list.total },
        'Older entries',
      );
      more.addEventListener('click', () => {
        offset += PAGE;
        void load();
      });
      replaceChildren(
        body,
        h(
          'p',
          { class: 'muted' },
          `${list.total} entr${list.total === 1 ? 'y' : 'ies'}${offset ? `, from ${offset + 1}` : ''}.`,
        ),
        list.entries.length
          ? dataTable({
              caption: 'Audit trail, newest first',
              columns: ['When', 'Who', 'Action', 'Target', 'Detail', 'From', ''].map((label) => ({ label })),
              rows: list.entries.map((e) =>
                h(
                  'tr',
                  { 'data-action': e.action },
                  [
                    formatDateTime(e.at),
                    e.actor,
                    e.action,
                    target(e),
                    e.detail,
                    e.ip ?? '',
                    restoreButton(e),
                  ].map((c) => h('td', null, c)),
                ),
              ),
            })
          : null,
        more,
      );
    } catch (err) {
      replaceChildren(body, h('p', { class: 'error-text' }, errorMessage(err)));
    }
  }

  replaceChildren(
    main,
    h('h1', { id: 'page-heading', tabindex: '-1' }, 'Audit trail'),
    h(
      'p',
      { class: 'muted' },
      'Append-only: entries are never changed or removed. Deleted cases and specimens are hidden, not erased, and can be restored here.',
    ),
    h('div', { class: 'field' }, h('label', { for: 'audit-action' }, 'Action'), filter),
    body,
  );
  void load();
  return {};
}
