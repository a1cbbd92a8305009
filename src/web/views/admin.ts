/**
 * Admin: model versions (activate, roll back), alignment to the lab's images without labels
 * (admin-alignment.ts) and learning from reviewed cells (start an adaptation, follow it, compare its candidate
 * with the active model on the held-back cells, activate it on request).
 */
import { adminApi, type HeldOutScore, type Job } from '../admin-api.js';
import { alignmentSection } from './admin-alignment.js';
import type { AppContext, ViewHandle } from '../context.js';
import { h, replaceChildren } from '../dom.js';
import { announce, errorMessage } from '../status.js';

const pct = (x: number) => `${(100 * x).toFixed(1)} %`;
const when = (iso: string) => iso.slice(0, 19).replace('T', ' ');
/** Cells over every class of a per-class count. */
const total = (counts: Record<string, number>) => Object.values(counts).reduce((a, b) => a + b, 0);

/** Tells the header (main.ts) that the served model changed, so it shows the new one's name. */
export const MODEL_CHANGED = 'hv:model-changed';

export function renderAdmin(main: HTMLElement, _ctx: AppContext): ViewHandle {
  let timer: number | undefined;
  let destroyed = false;
  let active: number | null = null;
  let shown: Job | null = null;
  /** The job started on this page: its end is announced once. */
  let following: string | null = null;
  const versions = h('div', { id: 'model-versions' }, h('p', null, 'Loading…'));
  const jobs = h('div', { id: 'adaptation-jobs' });
  const follow = h('section', { id: 'adaptation-follow', 'aria-live': 'polite' });
  const minCells = h('input', { id: 'min-cells', type: 'number', min: '2', max: '1000', value: '10' });

  const act = async (what: string, f: () => Promise<unknown>) => {
    try {
      await f();
      announce(what);
      window.dispatchEvent(new Event(MODEL_CHANGED));
      await loadVersions();
    } catch (err) {
      announce(errorMessage(err), 'error');
    }
  };

  async function loadVersions(): Promise<void> {
    const list = await adminApi.models();
    if (destroyed) return;
    active = list.active;
    // The candidate's button follows the active version.
    if (shown) renderJob(shown);
    replaceChildren(
      versions,
      h(
        'table',
        { className: 'versions data-table' },
        h(
          'thead',
          null,
          h(
            'tr',
            null,
            ...['Version', 'Name', 'Source', 'sha256', 'Created', ''].map((t) => h('th', null, t)),
          ),
        ),
        h(
          'tbody',
          null,
          ...list.versions.map((v) =>
            h(
              'tr',
              { 'data-version': v.version, 'aria-current': v.active ? 'true' : null },
              h('td', null, String(v.version)),
              h('td', null, `${v.name} ${v.cardVersion}`),
              h('td', null, v.source),
              h('td', null, h('code', { title: v.sha256 }, v.sha256.slice(0, 12))),
              h('td', null, when(v.createdAt)),
              h(
                'td',
                null,
                v.active
                  ? h('strong', null, 'active')
                  : h(
                      'button',
                      {
                        type: 'button',
                        onclick: () =>
                          void act(`Version ${v.version} is active.`, () => adminApi.activate(v.version)),
                      },
                      `Activate ${v.version}`,
                    ),
              ),
            ),
          ),
        ),
      ),
      h(
        'button',
        {
          type: 'button',
          id: 'rollback',
          disabled: list.rollbackTo === null,
          title:
            'Undoes the last activation: each roll back goes one step further back, down to the first ' +
            'version activated.',
          onclick: () => void act('Rolled back.', () => adminApi.rollback()),
        },
        list.rollbackTo === null ? 'Nothing to roll back to' : `Roll back to version ${list.rollbackTo}`,
      ),
    );
  }

  async function loadJobs(): Promise<void> {
    const { jobs: list } = await adminApi.adaptations();
    replaceChildren(
      jobs,
      list.length === 0
        ? h('p', null, 'No adaptation yet.')
        : h(
            'ul',
            null,
            ...list.map((j) =>
              h(
                'li',
                null,
                h(
                  'button',
                  { type: 'button', className: 'link', onclick: () => void show(j.id) },
                  when(j.createdAt),
                ),
                ` — ${j.state}`,
              ),
            ),
          ),
    );
  }

  function scoreRows(a: HeldOutScore, c: HeldOutScore) {
    const row = (name: string, x: string, y: string) =>
      h(
        'tr',
        null,
        h('th', { scope: 'row' }, name),
        h('td', { className: 'num' }, x),
        h('td', { className: 'num' }, y),
      );
    return [
      row('Accuracy', pct(a.accuracy), pct(c.accuracy)),
      row('Macro-F1', pct(a.macroF1), pct(c.macroF1)),
      row('Review rate', pct(a.reviewRate), pct(c.reviewRate)),
      row('Silent errors', String(a.silentErrors), String(c.silentErrors)),
      // Older jobs' results have no calibration error.
      ...(a.ece !== undefined && c.ece !== undefined
        ? [row('Calibration error (ECE)', a.ece.toFixed(3), c.ece.toFixed(3))]
        : []),
      ...Object.keys(a.perClass).map((k) =>
        row(`Recall: ${k} (${a.perClass[k].support})`, pct(a.perClass[k].recall), pct(c.perClass[k].recall)),
      ),
    ];
  }

  function renderJob(job: Job): void {
    shown = job;
    const result = job.result;
    const busy = job.state === 'queued' || job.state === 'running';
    // The stage is what it is doing now: once it has ended, the last one would read as still going on.
    replaceChildren(
      follow,
      h('h2', null, 'Adaptation'),
      h('p', { id: 'job-state' }, `${job.state}${busy && job.stage ? ` — ${job.stage}` : ''}`),
      h('progress', { max: '1', value: String(job.progress), 'aria-label': 'Progress' }),
      job.error ? h('p', { className: 'error', role: 'alert' }, job.error) : null,
      result
        ? [
            // How it learned, in one line (results of older jobs have no recipe: a new head).
            h(
              'p',
              { id: 'recipe' },
              result.recipe?.reason ??
                (result.recipe?.kind === 'fine-tune'
                  ? 'Fine-tuned from the active model.'
                  : 'A new head on the frozen backbone.'),
            ),
            h(
              'p',
              null,
              `Scored on ${result.comparison.heldOut} held-back reviewed cells (whole images held back), ` +
                'trained without them. ' +
                (result.recipe?.kind === 'fine-tune'
                  ? `The candidate stored is the one scored: fine-tuned on ${total(result.counts.trained)} ` +
                    `reviewed cells, calibrated on ${total(result.counts.calibration ?? {})} others.`
                  : result.counts.final
                    ? `The candidate stored was then trained the same way on all ${total(result.counts.final)} ` +
                      'reviewed cells, so it has seen these too.'
                    : ''),
            ),
            h(
              'table',
              { id: 'comparison', className: 'data-table comparison' },
              h(
                'thead',
                null,
                h(
                  'tr',
                  null,
                  h('th', null, ''),
                  h('th', { className: 'num' }, `Version ${result.baseVersion}`),
                  h('th', { className: 'num' }, `Candidate ${result.candidateVersion}`),
                ),
              ),
              h('tbody', null, ...scoreRows(result.comparison.active, result.comparison.candidate)),
            ),
            // Activating is the admin's call; a candidate that scores lower is said so in words, not left to be spotted.
            result.comparison.candidate.accuracy < result.comparison.active.accuracy
              ? h(
                  'p',
                  { id: 'candidate-worse', className: 'warning' },
                  `The candidate is less accurate than version ${result.baseVersion} on these cells: ` +
                    `keep version ${result.baseVersion} unless you have a reason to switch.`,
                )
              : null,
            active === result.candidateVersion
              ? h(
                  'p',
                  { id: 'candidate-active' },
                  h('strong', null, `Candidate ${result.candidateVersion} is active.`),
                )
              : h(
                  'button',
                  {
                    type: 'button',
                    id: 'activate-candidate',
                    onclick: () =>
                      void act(`Version ${result.candidateVersion} is active.`, () =>
                        adminApi.activate(result.candidateVersion),
                      ),
                  },
                  `Activate candidate ${result.candidateVersion}`,
                ),
          ]
        : null,
    );
  }

  async function show(id: string): Promise<void> {
    window.clearTimeout(timer);
    try {
      const job = await adminApi.adaptation(id);
      if (destroyed) return;
      renderJob(job);
      if (job.state === 'queued' || job.state === 'running')
        timer = window.setTimeout(() => void show(id), 1000);
      else {
        if (following === id) {
          following = null;
          if (job.state === 'succeeded') announce('Adaptation finished: compare the candidate below.');
          else announce(`Adaptation ${job.state}.`, 'error');
        }
        await Promise.all([loadJobs(), loadVersions()]);
      }
    } catch (err) {
      announce(errorMessage(err), 'error');
    }
  }

  const alignment = alignmentSection(() => loadVersions());
  replaceChildren(
    main,
    h('h1', { id: 'page-heading', tabindex: '-1' }, 'Model versions and adaptation'),
    h('section', null, h('h2', null, 'Versions'), versions),
    alignment.element,
    h(
      'section',
      null,
      h('h2', null, 'Learn from reviewed cells'),
      h(
        'p',
        null,
        'Trains a candidate from the active model on the cells reviewers confirmed or corrected, holding ' +
          'back part of the images to score it beside the active model. The active model does not change ' +
          'until you activate the candidate.',
      ),
      h(
        'form',
        {
          onsubmit: (e: Event) => {
            e.preventDefault();
            void adminApi
              .startAdaptation({ minCellsPerClass: Number(minCells.value) })
              .then((job) => {
                following = job.id;
                announce('Adaptation started.');
                return Promise.all([loadJobs(), show(job.id)]);
              })
              .catch((err: unknown) => announce(errorMessage(err), 'error'));
          },
        },
        h('label', { for: 'min-cells' }, 'Fewest reviewed cells per class '),
        minCells,
        h('button', { type: 'submit', id: 'start-adaptation' }, 'Start'),
      ),
      jobs,
      follow,
    ),
  );
  void loadVersions().catch((err: unknown) => announce(errorMessage(err), 'error'));
  void loadJobs().catch((err: unknown) => announce(errorMessage(err), 'error'));
  return {
    destroy() {
      destroyed = true;
      window.clearTimeout(timer);
      alignment.destroy();
    },
  };
}
