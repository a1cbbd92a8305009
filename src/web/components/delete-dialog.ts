/**
 * Deleting with a reason (a case, a specimen): a button that opens a modal asking why, and the deletion once
 * confirmed. Nothing is erased: the server deletes softly and keeps who and why in the audit trail, from
 * which an admin restores it. The button and the dialog are returned together, to be placed side by side.
 */
import { h } from '../dom.js';
import { announce, errorMessage } from '../status.js';

export interface DeleteDialogOptions {
  /** Prefix of the elements' ids: `<id>-title`, `<id>-desc` and the reason's `<id>-reason`. */
  id: string;
  /** What is deleted, as the buttons and messages name it ("case", "specimen"). */
  what: string;
  title: string;
  description: string;
  /** Deletes it (the reason as typed, or 'no reason given'); throws to say it was not deleted. */
  remove: (reason: string) => Promise<unknown>;
  /** Said once deleted; then the page moves to `after` (a hash route). */
  deleted: string;
  after: string;
}

export function deleteWithReason(o: DeleteDialogOptions): [HTMLButtonElement, HTMLDialogElement] {
  const reasonField = h('textarea', { id: `${o.id}-reason`, rows: '2', maxlength: '1000', required: true });
  const dialog = h(
    'dialog',
    { class: 'confirm-dialog', 'aria-labelledby': `${o.id}-title`, 'aria-describedby': `${o.id}-desc` },
    h(
      'form',
      { method: 'dialog' },
      h('h2', { id: `${o.id}-title` }, o.title),
      h('p', { id: `${o.id}-desc` }, o.description),
      h('div', { class: 'field' }, h('label', { for: `${o.id}-reason` }, 'Reason'), reasonField),
      h(
        'div',
        { class: 'form-actions' },
        h(
          'button',
          { value: 'cancel', class: 'btn btn--secondary', autofocus: true, formnovalidate: true },
          'Cancel',
        ),
        h('button', { value: 'delete', class: 'btn btn--danger' }, `Delete ${o.what}`),
      ),
    ),
  );
  const capital = o.what.charAt(0).toUpperCase() + o.what.slice(1);
  dialog.addEventListener('close', () => {
    if (dialog.returnValue !== 'delete') return;
    void (async () => {
      announce(`Deleting ${o.what}…`, 'busy');
      try {
        await o.remove(reasonField.value.trim() || 'no reason given');
        announce(o.deleted, 'success');
        location.hash = o.after;
      } catch (err) {
        announce(`${capital} not deleted: ${errorMessage(err)}`, 'error');
      }
    })();
  });
  const open = h('button', { type: 'button', class: 'btn btn--danger-outline' }, `Delete ${o.what}…`);
  open.addEventListener('click', () => {
    dialog.returnValue = '';
    dialog.showModal();
  });
  return [open, dialog];
}
