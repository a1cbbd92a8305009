/** Specimens page: the lab's slides (search, newest first) and the "new specimen" form. */
import { api, type Specimen } from '../api.js';
import type { AppContext, ViewHandle } from '../context.js';
import { dataTable, h, replaceChildren } from '../dom.js';
import { formatDateTime } from '../format.js';
import { specimenHref } from '../router.js';
import { announce, errorMessage } from '../status.js';

/** The "new specimen" form; `created` gets the stored specimen. Also used by the analyse page. */
export function newSpecimenForm(created: (s: Specimen) => void): HTMLFormElement {
  const id = h('input', {
    type: 'text',
    id: 'specimen-id',
    name: 'id',
    required: true,
    maxlength: 64,
    autocomplete: 'off',
    'aria-describedby': 'specimen-id-hint',
  });
  const source = h('input', { type: 'text', id: 'specimen-source', name: 'source', maxlength: 200 });
  const target = h(
    'select',
    { id: 'specimen-target', name: 'targetCount' },
    h('option', { value: '100' }, '100 white cells'),
    h('option', { value: '200' }, '200 white cells'),
  );
  const note = h('textarea', { id: 'specimen-note', name: 'note', rows: 2, maxlength: 4000 });
  const form = h(
    'form',
    { class: 'panel specimen-form', novalidate: false },
    h('h2', null, 'New specimen'),
    h(
      'div',
      { class: 'specimen-form__grid' },
      h(
        'div',
        { class: 'field' },
        h('label', { for: 'specimen-id' }, 'Accession / specimen ID'),
        id,
        h('span', { class: 'muted', id: 'specimen-id-hint' }, 'The lab’s own ID; no patient name needed.'),
      ),
      h(
        'div',
        { class: 'field' },
        h('label', { for: 'specimen-source' }, 'Source or clinic (optional)'),
        source,
      ),
      h('div', { class: 'field' }, h('label', { for: 'specimen-target' }, 'Target count'), target),
    ),
    h('div', { class: 'field' }, h('label', { for: 'specimen-note' }, 'Note (optional)'), note),
    h(
      'div',
      { class: 'form-actions' },
      h('button', { type: 'submit', class: 'btn btn--primary' }, 'Create specimen'),
    ),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    void (async () => {
      try {
        const s = await api.createSpecimen({
          id: id.value,
          source: source.value || null,
          note: note.value || null,
          targetCount: target.value === '200' ? 200 : 100,
        });
        announce(`Specimen ${s.id} created.`, 'success');
        created(s);
      } catch (err) {
        announce(errorMessage(err), 'error');
        id.focus();
      }
    })();
  });
  return form;
}

export function renderSpecimens(main: HTMLElement, _ctx: AppContext): ViewHandle {
  const search = h('input', {
    type: 'search',
    id: 'specimen-search',
    placeholder: 'ID, source or note',
    'aria-label': 'Search specimens',
  });
  const list = h('div', { class: 'specimen-list' }, h('p', { class: 'muted' }, 'Loading…'));
  replaceChildren(
    main,
    h('div', { class: 'page-head' }, h('h1', { id: 'page-heading', tabindex: '-1' }, 'Specimens')),
    h(
      'p',
      { class: 'lede' },
      'A specimen is one slide: upload its images into it, review its cells and sign its report.',
    ),
    newSpecimenForm((s) => (location.hash = specimenHref(s.id))),
    h('section', { class: 'panel', 'aria-label': 'Specimens' }, h('p', { class: 'filters' }, search), list),
  );

  let seq = 0;
  async function load(): Promise<void> {
    const mine = ++seq;
    try {
      const { specimens, total } = await api.listSpecimens(search.value ? { search: search.value } : {});
      if (mine !== seq) return;
      if (specimens.length === 0) {
        replaceChildren(
          list,
          h('p', { class: 'empty' }, search.value ? 'No specimen matches.' : 'No specimens yet.'),
        );
        return;
      }
      replaceChildren(
        list,
        dataTable({
          caption: `${total} specimen${total === 1 ? '' : 's'}`,
          columns: [
            { label: 'Specimen' },
            { label: 'Source' },
            { label: 'Images', num: true },
            { label: 'Cells', num: true },
            { label: 'Target', num: true },
            { label: 'Last change' },
          ],
          rows: specimens.map((s) =>
            h(
              'tr',
              { 'data-specimen-id': s.id },
              h('th', { scope: 'row' }, h('a', { href: specimenHref(s.id) }, s.id)),
              h('td', null, s.source ?? ''),
              h('td', { class: 'num' }, String(s.imageCount)),
              h('td', { class: 'num' }, String(s.cellCount)),
              h('td', { class: 'num' }, String(s.targetCount)),
              h('td', null, formatDateTime(s.updatedAt)),
            ),
          ),
        }),
      );
    } catch (err) {
      replaceChildren(list, h('p', { class: 'error-text' }, errorMessage(err)));
    }
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  search.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(() => void load(), 200);
  });
  void load();
  return { destroy: () => clearTimeout(timer) };
}
