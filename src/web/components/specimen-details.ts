/**
 * A specimen's own details on its page: edit its source, note and target count, and (admins) delete it with a
 * reason. Delete is offered only for a specimen without images: the server refuses the others (409), since a
 * slide's images are results filed under it; they are deleted one by one first.
 */
import { api, type Specimen } from '../api.js';
import type { AppContext } from '../context.js';
import { h } from '../dom.js';
import { deleteWithReason } from './delete-dialog.js';
import { announce, errorMessage } from '../status.js';

export function specimenDetails(s: Specimen, ctx: AppContext, saved: () => Promise<void>): HTMLElement {
  const source = h('input', {
    type: 'text',
    id: 'edit-specimen-source',
    maxlength: 200,
    value: s.source ?? '',
  });
  const note = h('textarea', { id: 'edit-specimen-note', rows: 2, maxlength: 4000 }, s.note ?? '');
  const target = h(
    'select',
    { id: 'edit-specimen-target' },
    [100, 200].map((n) =>
      h('option', { value: String(n), selected: s.targetCount === n }, `${n} white cells`),
    ),
  );
  const form = h(
    'form',
    { class: 'specimen-form' },
    h('div', { class: 'field' }, h('label', { for: 'edit-specimen-source' }, 'Source or clinic'), source),
    h('div', { class: 'field' }, h('label', { for: 'edit-specimen-target' }, 'Target count'), target),
    h('div', { class: 'field' }, h('label', { for: 'edit-specimen-note' }, 'Note'), note),
    h(
      'p',
      { class: 'muted' },
      'The ID stays as it is. A change makes the report a new revision, to be signed again.',
    ),
    h('div', { class: 'form-actions' }, h('button', { type: 'submit', class: 'btn btn--primary' }, 'Save')),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    void (async () => {
      try {
        await api.updateSpecimen(s.id, {
          source: source.value.trim() || null,
          note: note.value.trim() || null,
          targetCount: target.value === '200' ? 200 : 100,
        });
        announce(`Specimen ${s.id} saved.`, 'success');
        await saved();
      } catch (err) {
        announce(errorMessage(err), 'error');
      }
    })();
  });

  const role = ctx.auth ? ctx.account?.role : 'admin';
  return h(
    'details',
    { class: 'panel specimen-details' },
    h('summary', null, 'Edit details'),
    form,
    role === 'admin' ? deleteControl(s) : null,
  );
}

function deleteControl(s: Specimen): HTMLElement {
  if (s.imageCount > 0)
    return h(
      'p',
      { class: 'muted' },
      `To delete this specimen, delete its ${s.imageCount === 1 ? 'image' : `${s.imageCount} images`} first.`,
    );
  const [open, dialog] = deleteWithReason({
    id: 'delete-specimen',
    what: 'specimen',
    title: `Delete specimen ${s.id}?`,
    description:
      'It leaves the list of specimens. Nothing is erased: an admin can restore it from the audit trail, ' +
      'which keeps who deleted it and why.',
    remove: (reason) => api.deleteSpecimen(s.id, reason),
    deleted: `Specimen ${s.id} deleted.`,
    after: '#/specimens',
  });
  return h('div', { class: 'form-actions' }, open, dialog);
}
