/** The practice page's panels: the pool line, the empty pool, the running score and the round summary. */
import { dataTable, h } from '../dom.js';
import { displayLabel, formatPercent } from '../format.js';
import { isTeachingCase, scoreSummary, scoreText, type Answer, type Pool } from '../practice.js';
import type { CaseResult } from '../api.js';
import { caseHref } from '../router.js';

/** A round of practice questions and the answers given so far. */
export interface Round {
  questions: CaseResult[];
  answers: Answer[];
  /** Index of the question on screen; questions.length once the summary is shown. */
  index: number;
  classes: string[];
}

function percentOf(n: number, d: number): string {
  return d > 0 ? formatPercent(n / d, 0) : '—';
}

export function emptyPool(pool: Pool): HTMLElement {
  return h(
    'section',
    { class: 'empty practice-empty', 'aria-labelledby': 'practice-empty-heading' },
    h('h2', { id: 'practice-empty-heading' }, 'No reviewed cases to practise on yet'),
    h(
      'p',
      null,
      'Questions come from cases a person has reviewed: the reviewer’s label is the answer key. To add some:',
    ),
    h(
      'ol',
      { class: 'practice-empty__steps' },
      h('li', null, h('a', { href: '#/' }, 'Analyse'), ' blood-smear images; each one is stored as a case.'),
      h(
        'li',
        null,
        'Open each case from the ',
        h('a', { href: '#/history?reviewed=false' }, 'case history'),
        ' and confirm or correct its label.',
      ),
      h('li', null, 'Come back here: every reviewed case becomes a question.'),
    ),
    pool.excluded
      ? h(
          'p',
          { class: 'muted' },
          `${pool.excluded} reviewed case${pool.excluded === 1 ? ' is' : 's are'} left out: reviewed as ` +
            `${displayLabel('other')} or ${displayLabel('not_a_white_cell')}, or as a class the model does not have.`,
        )
      : null,
  );
}

export function poolNote(pool: Pool): HTMLElement {
  const own = pool.cases.length - pool.teaching;
  const reviewed = `${own} reviewed case${own === 1 ? '' : 's'}`;
  return h(
    'p',
    { class: 'muted practice-pool' },
    pool.teaching
      ? `${pool.teaching} teaching cells from the PBC dataset ${own ? `and ${reviewed} ` : ''}in the question pool` +
          (own ? '' : '; cases you review join them')
      : `${reviewed} in the question pool`,
    pool.excluded
      ? ` (${pool.excluded} left out: reviewed as ${displayLabel('other')} or ${displayLabel('not_a_white_cell')})`
      : '',
    '.',
  );
}

export function scorePanel(r: Round, session: { answered: number; correct: number }): HTMLElement {
  const s = scoreSummary(r.answers, r.classes);
  return h(
    'section',
    { class: 'panel practice-score', 'aria-labelledby': 'score-heading' },
    h('h2', { id: 'score-heading' }, 'Score'),
    h(
      'p',
      { class: 'practice-score__total' },
      h('strong', { id: 'score-value', class: 'num' }, scoreText(s.correct, s.answered)),
      h(
        'span',
        { class: 'muted' },
        s.answered ? ` correct · ${percentOf(s.correct, s.answered)}` : ' correct',
      ),
    ),
    s.answered
      ? dataTable({
          className: 'practice-score__table',
          caption: 'Score by reviewer’s label',
          captionHidden: true,
          columns: [{ label: 'Cell type' }, { label: 'Correct', num: true }],
          rows: s.perClass.map((c) =>
            h(
              'tr',
              { 'data-class': c.label },
              h('th', { scope: 'row' }, displayLabel(c.label)),
              h('td', { class: 'num' }, scoreText(c.correct, c.asked)),
            ),
          ),
        })
      : h('p', { class: 'muted' }, 'No answers yet in this round.'),
    h(
      'p',
      { class: 'muted practice-score__session' },
      `This session: ${scoreText(session.correct, session.answered)} correct.`,
    ),
  );
}

export function summaryPanel(r: Round): HTMLElement {
  const s = scoreSummary(r.answers, r.classes);
  const missed = r.answers.map((a, i) => ({ a, c: r.questions[i] })).filter(({ a }) => a.picked !== a.truth);
  return h(
    'section',
    { class: 'panel practice-summary', 'aria-labelledby': 'summary-heading' },
    h(
      'h2',
      { id: 'summary-heading', tabindex: '-1' },
      `Round complete: ${scoreText(s.correct, s.answered)} correct`,
    ),
    h(
      'p',
      null,
      `You matched the answer key on ${s.correct} of ${s.answered} cell${s.answered === 1 ? '' : 's'} ` +
        `(${percentOf(s.correct, s.answered)})` +
        (s.modelAnswered
          ? `; on the ${s.modelAnswered} reviewed case${s.modelAnswered === 1 ? '' : 's'}, the model matched ` +
            `on ${s.modelCorrect} (${percentOf(s.modelCorrect, s.modelAnswered)}).`
          : '.'),
    ),
    dataTable({
      className: 'practice-summary__table',
      caption: 'Per class',
      columns: [{ label: 'Answer key' }, { label: 'Correct', num: true }, { label: 'You answered instead' }],
      rows: s.perClass.map((c) =>
        h(
          'tr',
          { 'data-class': c.label },
          h('th', { scope: 'row' }, displayLabel(c.label)),
          h('td', { class: 'num' }, scoreText(c.correct, c.asked)),
          h(
            'td',
            null,
            c.mistakes.length
              ? c.mistakes.map((m) => `${displayLabel(m.picked)} ×${m.count}`).join(', ')
              : h('span', { class: 'muted' }, 'No mistakes'),
          ),
        ),
      ),
    }),
    missed.length
      ? [
          h('h3', { class: 'practice-summary__missed-heading' }, 'Cases to look at again'),
          h(
            'ul',
            { class: 'practice-summary__missed' },
            missed.map(({ a, c }) =>
              h(
                'li',
                null,
                isTeachingCase(c) ? `Teaching cell ${c.file}` : h('a', { href: caseHref(c.id) }, c.file),
                h(
                  'span',
                  { class: 'muted' },
                  ` — you answered ${displayLabel(a.picked)}, the ${isTeachingCase(c) ? 'expert' : 'reviewer'} ${displayLabel(a.truth)}`,
                ),
              ),
            ),
          ),
        ]
      : null,
    h(
      'div',
      { class: 'form-actions' },
      h(
        'button',
        { type: 'button', class: 'btn btn--primary', id: 'practice-restart', 'aria-keyshortcuts': 'Enter' },
        'Start a new round',
        h('kbd', { class: 'key-hint', 'aria-hidden': 'true' }, 'Enter'),
      ),
    ),
  );
}
