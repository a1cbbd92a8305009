/**
 * Practice page: students name the cell in the bundled teaching cells and the teacher's reviewed cases, then
 * see the expert's or reviewer's label (the answer key), a note on how to recognise the cell and, for reviewed
 * cases only, the model's prediction, to compare their eye with the model's.
 */
import { api } from '../api.js';
import { probabilityTable } from '../components/probabilities.js';
import { predictionLabel, reviewAttribution } from '../components/review.js';
import { specimen } from '../components/specimen.js';
import { teachingNotePanel, teachingSourcePanel } from '../components/teaching.js';
import type { AppContext, ViewHandle } from '../context.js';
import { h, replaceChildren } from '../dom.js';
import { displayLabel, formatPercent } from '../format.js';
import {
  answerClasses,
  buildPool,
  fetchReviewed,
  fetchTeaching,
  planRound,
  questionCell,
  scoreSummary,
  scoreText,
  teachingInfoOf,
  type Pool,
  type SessionOrder,
} from '../practice.js';
import { caseHref } from '../router.js';
import { emptyPool, poolNote, scorePanel, summaryPanel, type Round } from './practice-panels.js';
import { announce, errorMessage } from '../status.js';

const ORDER_KEY = 'hematovision.practice.order';

// Module state, like the analyse page's last batch: leaving for a case page and coming back resumes the round.
let round: Round | null = null;
let pool: Pool | null = null;
const session = { answered: 0, correct: 0 };

function newSeed(): number {
  return crypto.getRandomValues(new Uint32Array(1))[0];
}

/** The session's order lives in sessionStorage, so a reload does not ask the same cells again. */
function loadOrder(): SessionOrder {
  try {
    const raw = JSON.parse(sessionStorage.getItem(ORDER_KEY) ?? 'null') as SessionOrder | null;
    if (raw && Number.isInteger(raw.seed) && Array.isArray(raw.seen)) return raw;
  } catch {
    // Storage disabled or a damaged value: start a fresh order.
  }
  return { seed: newSeed(), seen: [] };
}

function saveOrder(order: SessionOrder): void {
  try {
    sessionStorage.setItem(ORDER_KEY, JSON.stringify(order));
  } catch {
    // Private mode: questions may repeat after a reload, nothing worse.
  }
}

export function renderPractice(main: HTMLElement, ctx: AppContext): ViewHandle {
  let cancelled = false;
  /** What Enter and the digit keys do right now. */
  let mode: 'loading' | 'question' | 'feedback' | 'summary' = 'loading';
  let answerQuestion: ((label: string) => void) | null = null;
  let goOn: (() => void) | null = null;

  const area = h(
    'div',
    { class: 'practice-area', 'aria-busy': 'true' },
    h('p', { class: 'muted' }, 'Loading the question pool…'),
  );
  const poolArea = h('div');
  replaceChildren(
    main,
    h('h1', { id: 'page-heading', tabindex: '-1' }, 'Practice'),
    h(
      'p',
      { class: 'lede' },
      'Name the cell in each image, then compare your answer with the answer key and, for reviewed cases, the model’s. ',
      h(
        'strong',
        null,
        'The answer key is the label a reviewer gave the case in the case history, or the expert’s label of a bundled teaching cell — never the model’s own prediction',
      ),
      ', which is shown only after you answer. After each answer, a short note says how to recognise the cell.',
    ),
    poolArea,
    area,
  );

  function showQuestion(r: Round, moveFocus: boolean): void {
    const c = r.questions[r.index];
    const teaching = teachingInfoOf(c);
    const cell = questionCell(c);
    const number = r.index + 1;
    const { root: figure, toggle } = specimen(c, 'large', {
      blind: true,
      cells: cell ? [cell] : [],
      alt: `Blood smear for question ${number}${cell ? ', the cell in question outlined in yellow' : ''}`,
    });
    const tools = h('div', { class: 'result-card__tools' });
    const prompt = teaching
      ? 'Which type of cell is in the centre of this image?'
      : cell
        ? 'Which type of white cell is outlined in the yellow box?'
        : 'Which type of white cell does this image show?';

    const buttons = r.classes.map((label, i) =>
      h(
        'button',
        {
          type: 'button',
          class: 'btn btn--secondary answer-btn',
          'data-class': label,
          'aria-keyshortcuts': i < 9 ? String(i + 1) : null,
        },
        i < 9 ? h('kbd', { class: 'answer-btn__key', 'aria-hidden': 'true' }, String(i + 1)) : null,
        h('span', { class: 'answer-btn__label' }, displayLabel(label)),
        h('span', { class: 'answer-btn__mark' }),
      ),
    );
    const verdict = h('p', {
      class: 'practice-verdict',
      id: 'practice-verdict',
      'aria-live': 'polite',
      'aria-atomic': 'true',
    });
    const feedback = h('div', { class: 'practice-feedback' });
    const keyHint = h(
      'p',
      { class: 'muted practice-hint', id: 'practice-hint' },
      r.classes.length > 1
        ? `Press ${r.classes.length > 9 ? '1–9' : `1–${r.classes.length}`} to answer.`
        : 'Press 1 to answer.',
    );
    const scoreSlot = h('div', { class: 'practice-score-slot' }, scorePanel(r, session));

    replaceChildren(
      area,
      h(
        'div',
        { class: 'practice-layout' },
        h(
          'section',
          { class: 'panel practice-image', 'aria-label': `Image for question ${number}` },
          figure,
          tools,
        ),
        h(
          'section',
          { class: 'panel practice-question', 'aria-labelledby': 'question-heading' },
          h('h2', { id: 'question-heading', tabindex: '-1' }, `Question ${number} of ${r.questions.length}`),
          h('p', { id: 'question-prompt', class: 'practice-prompt' }, prompt),
          h(
            'div',
            {
              class: 'answer-grid',
              role: 'group',
              'aria-labelledby': 'question-prompt',
              'aria-describedby': 'practice-hint',
            },
            buttons,
          ),
          keyHint,
          verdict,
          feedback,
        ),
        scoreSlot,
      ),
    );
    area.setAttribute('aria-busy', 'false');
    mode = 'question';
    goOn = null;
    // The next image loads while the student looks at this one.
    const following = r.questions[r.index + 1];
    if (following) new Image().src = api.imageUrl(following);

    answerQuestion = (picked: string) => {
      if (mode !== 'question') return;
      const truth = c.review!.label;
      const correct = picked === truth;
      r.answers.push({
        caseId: c.id,
        truth,
        picked,
        model: c.label,
        ...(teaching ? { teaching: true } : {}),
      });
      session.answered += 1;
      if (correct) session.correct += 1;
      mode = 'feedback';

      for (const b of buttons) {
        const label = b.dataset.class!;
        const mark = b.querySelector('.answer-btn__mark')!;
        const said = (visible: string, spoken: string) =>
          mark.replaceChildren(
            h('span', { 'aria-hidden': 'true' }, visible),
            h('span', { class: 'visually-hidden' }, ` (${spoken})`),
          );
        if (label === truth) {
          b.classList.add('answer-btn--truth');
          said('✓', label === picked ? 'your answer, the reviewer’s label' : 'the reviewer’s label');
        } else if (label === picked) {
          b.classList.add('answer-btn--wrong');
          said('✗', 'your answer');
        }
      }
      keyHint.remove();

      const last = r.index + 1 >= r.questions.length;
      const nextBtn = h(
        'button',
        { type: 'button', class: 'btn btn--primary', id: 'practice-next', 'aria-keyshortcuts': 'Enter' },
        last ? 'See the round summary' : 'Next question',
        h('kbd', { class: 'key-hint', 'aria-hidden': 'true' }, 'Enter'),
      );
      nextBtn.addEventListener('click', () => goOn?.());
      const review = c.review!;
      const found = c.label !== null;
      const s = scoreSummary(r.answers, r.classes);
      verdict.className = `practice-verdict practice-verdict--${correct ? 'correct' : 'incorrect'}`;
      verdict.textContent = correct
        ? `Correct: ${displayLabel(truth)}. Score ${scoreText(s.correct, s.answered)}.`
        : `Incorrect: you answered ${displayLabel(picked)}; the ${teaching ? 'expert’s' : 'reviewer’s'} label is ${displayLabel(truth)}. Score ${scoreText(s.correct, s.answered)}.`;

      replaceChildren(
        feedback,
        h(
          'div',
          { class: 'review-current practice-answer-key' },
          h(
            'p',
            { class: 'review-current__head' },
            `${teaching ? 'Expert’s' : 'Reviewer’s'} label (answer key)`,
          ),
          h('p', { class: 'review-current__label', 'data-label': truth }, displayLabel(truth)),
          ...(teaching ? [] : reviewAttribution(review, 'practice-reviewer')),
        ),
        teachingNotePanel(truth, picked),
        teaching
          ? teachingSourcePanel(teaching)
          : h(
              'div',
              { class: 'practice-model' },
              h('h3', { id: 'model-heading' }, 'Model prediction'),
              h('p', { class: 'prediction' }, predictionLabel(c.label)),
              h(
                'p',
                { class: 'prediction__meta' },
                found
                  ? h('span', null, 'Confidence ', h('strong', { class: 'num' }, formatPercent(c.confidence)))
                  : null,
                h(
                  'span',
                  { class: `badge ${c.label === truth ? 'badge--done' : 'badge--review'}` },
                  c.label === truth ? 'Agrees with the reviewer' : 'Differs from the reviewer',
                ),
              ),
              c.message ? h('p', { class: 'notice' }, c.message) : null,
              Object.keys(c.probabilities).length
                ? probabilityTable(c.probabilities, r.classes, c.label, 'Model’s class probabilities')
                : null,
              h(
                'p',
                { class: 'muted practice-model__link' },
                h('a', { href: caseHref(c.id) }, `Open case ${c.file}`),
              ),
            ),
        h('div', { class: 'form-actions practice-next' }, nextBtn),
      );
      if (!teaching) tools.append(toggle);
      replaceChildren(scoreSlot, scorePanel(r, session));
      // Focus leaves the answer buttons (about to be disabled) for the way on; the verdict is announced.
      nextBtn.focus();
      for (const b of buttons) b.disabled = true;
      goOn = () => {
        r.index += 1;
        if (r.index < r.questions.length) showQuestion(r, true);
        else showSummary(r, true);
      };
    };
    for (const b of buttons) b.addEventListener('click', () => answerQuestion?.(b.dataset.class!));
    if (moveFocus) document.getElementById('question-heading')?.focus();
  }

  function showSummary(r: Round, moveFocus: boolean): void {
    mode = 'summary';
    answerQuestion = null;
    replaceChildren(area, summaryPanel(r));
    area.setAttribute('aria-busy', 'false');
    goOn = () => void startRound(true);
    document.getElementById('practice-restart')?.addEventListener('click', () => goOn?.());
    if (moveFocus) document.getElementById('summary-heading')?.focus();
  }

  async function startRound(moveFocus: boolean): Promise<void> {
    mode = 'loading';
    goOn = null;
    answerQuestion = null;
    area.setAttribute('aria-busy', 'true');
    try {
      // Reloaded at each round so cases reviewed in the meantime join the pool.
      const [reviewed, teaching] = await Promise.all([
        fetchReviewed(api.listCases),
        fetchTeaching(api.teaching),
      ]);
      if (cancelled) return;
      const classes = answerClasses(ctx.classes, [...teaching, ...reviewed]);
      pool = buildPool(reviewed, classes, teaching);
      replaceChildren(poolArea, pool.cases.length ? poolNote(pool) : null);
      if (pool.cases.length === 0) {
        round = null;
        replaceChildren(area, emptyPool(pool));
        area.setAttribute('aria-busy', 'false');
        return;
      }
      const byId = new Map(pool.cases.map((c) => [c.id, c]));
      const planned = planRound([...byId.keys()], loadOrder(), newSeed());
      saveOrder(planned.order);
      round = { questions: planned.ids.map((id) => byId.get(id)!), answers: [], index: 0, classes };
      showQuestion(round, moveFocus);
    } catch (err) {
      if (cancelled) return;
      area.setAttribute('aria-busy', 'false');
      replaceChildren(
        area,
        h('p', { class: 'error-text' }, `The question pool could not be loaded: ${errorMessage(err)}`),
      );
      announce(`The question pool could not be loaded: ${errorMessage(err)}`, 'error');
    }
  }

  function onKey(e: KeyboardEvent): void {
    if (e.defaultPrevented || e.altKey || e.ctrlKey || e.metaKey) return;
    const target = e.target instanceof Element ? e.target : null;
    if (target?.closest('input, textarea, select, [contenteditable="true"], dialog')) return;
    if (mode === 'question' && /^[1-9]$/.test(e.key) && round) {
      const label = round.classes[Number(e.key) - 1];
      if (label) {
        e.preventDefault();
        answerQuestion?.(label);
      }
    } else if (e.key === 'Enter' && !e.repeat && (mode === 'feedback' || mode === 'summary')) {
      // A focused button or link answers Enter itself (the heat-map toggle, the case link).
      if (target?.closest('button, a, summary')) return;
      e.preventDefault();
      goOn?.();
    }
  }
  document.addEventListener('keydown', onKey);

  if (round && pool) {
    // Resume where the student left; an answered question moves on rather than being asked twice.
    round.index = round.answers.length;
    replaceChildren(poolArea, poolNote(pool));
    if (round.index < round.questions.length) showQuestion(round, false);
    else showSummary(round, false);
  } else {
    void startRound(false);
  }

  return {
    destroy() {
      cancelled = true;
      document.removeEventListener('keydown', onKey);
    },
  };
}
