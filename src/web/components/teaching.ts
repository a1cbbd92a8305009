/** Practice mode's teaching notes and the teaching set's attribution, shown after each answer. */
import { teachingNote } from '../../teaching/notes.js';
import { h } from '../dom.js';
import { displayLabel } from '../format.js';
import type { TeachingInfo } from '../practice.js';

/** What the answer looks like and how it differs from its usual look-alike; and, if wrong, what was picked. */
export function teachingNotePanel(truth: string, picked: string): HTMLElement | null {
  const note = teachingNote(truth);
  if (!note) return null;
  const other = picked !== truth ? teachingNote(picked) : null;
  return h(
    'section',
    { class: 'practice-note', 'aria-labelledby': 'practice-note-heading', 'data-class': truth },
    h('h3', { id: 'practice-note-heading' }, `About the ${displayLabel(truth).toLowerCase()}`),
    h('p', { class: 'practice-note__summary' }, h('strong', null, note.summary)),
    h('p', { class: 'practice-note__text' }, note.text),
    note.versus && note.versus !== picked
      ? h(
          'p',
          { class: 'practice-note__versus muted' },
          `Most often confused with: ${displayLabel(note.versus)}.`,
        )
      : null,
    other
      ? h(
          'p',
          { class: 'practice-note__picked muted' },
          `You answered ${displayLabel(picked)}: `,
          other.summary,
        )
      : null,
  );
}

/** Where a teaching cell comes from, in place of the model's prediction (which is not shown for them). */
export function teachingSourcePanel(info: TeachingInfo): HTMLElement {
  return h(
    'div',
    { class: 'practice-model practice-teaching-source' },
    h('h3', null, 'Teaching cell'),
    info.subtype ? h('p', null, 'Finer type: ', h('strong', null, info.subtype), '.') : null,
    h(
      'p',
      { class: 'muted' },
      `From the PBC dataset (Acevedo et al., Data in Brief 2020; CC BY 4.0), file ${info.sourceFile}, ` +
        'labelled by expert clinical pathologists. ',
      'The model’s prediction is not shown for teaching cells: it was trained on part of this dataset.',
    ),
  );
}
