/**
 * Admin: align the active model to this lab's stored images, without labels (POST /api/v1/alignments). The
 * aligned model becomes a new version beside the others; activating it stays the admin's call (the versions
 * table above). Shows the latest alignment on opening, so a job started earlier is followed too.
 */
import { adminApi, type AlignmentJob } from '../admin-api.js';
import { h, replaceChildren } from '../dom.js';
import { announce, errorMessage } from '../status.js';

const pct = (x: number) => `${(100 * x).toFixed(1)} %`;

export interface AlignmentSection {
  element: HTMLElement;
  destroy(): void;
}

/** `onDone` reloads the versions table once a job has ended. */
export function alignmentSection(onDone: () => Promise<void>): AlignmentSection {
  let timer: number | undefined;
  let destroyed = false;
  /** The job started here: its end is announced once. */
  let following: string | null = null;
  const status = h('div', { id: 'alignment-follow', 'aria-live': 'polite' });

  function render(job: AlignmentJob): void {
    const busy = job.state === 'queued' || job.state === 'running';
    const r = job.result;
    // "After" is measured on images held out of the refit, its threshold the active model's quantile: a few
    // per cent are flagged by design, so the line says where each share comes from.
    const flagged =
      r?.flagged.before && r.flagged.after
        ? ` Images flagged unfamiliar: ${pct(r.flagged.before.unfamiliarImage)} by the active model, ` +
          `${pct(r.flagged.after.unfamiliarImage)} by the aligned one (on images held out of its refit).`
        : '';
    replaceChildren(
      status,
      h('p', { id: 'alignment-state' }, `${job.state}${busy && job.stage ? ` — ${job.stage}` : ''}`),
      busy
        ? h('progress', { max: '1', value: String(job.progress), 'aria-label': 'Alignment progress' })
        : null,
      job.error ? h('p', { className: 'error', role: 'alert' }, job.error) : null,
      r
        ? h(
            'p',
            { id: 'alignment-result' },
            `Version ${r.alignedVersion} aligned on ${r.images} images: activate it above after checking it.` +
              flagged,
          )
        : null,
    );
  }

  async function show(id: string): Promise<void> {
    window.clearTimeout(timer);
    try {
      const job = await adminApi.alignment(id);
      if (destroyed) return;
      render(job);
      if (job.state === 'queued' || job.state === 'running') {
        timer = window.setTimeout(() => void show(id), 1000);
        return;
      }
      if (following === id) {
        following = null;
        if (job.state === 'succeeded') announce('Alignment finished: a new version is listed above.');
        else announce(`Alignment ${job.state}.`, 'error');
      }
      await onDone();
    } catch (err) {
      announce(errorMessage(err), 'error');
    }
  }

  const start = () =>
    void adminApi
      .startAlignment({})
      .then((job) => {
        following = job.id;
        announce('Alignment started.');
        return show(job.id);
      })
      .catch((err: unknown) => announce(errorMessage(err), 'error'));

  const element = h(
    'section',
    { id: 'alignment' },
    h('h2', null, "Align to this lab's images (no labels)"),
    h(
      'p',
      null,
      "Re-measures the active model's internal statistics on the most recent stored images (at least 50, up " +
        'to 500) and stores the result as a new version. Nothing needs reviewing; the active model does not ' +
        'change until you activate the new version.',
    ),
    h('button', { type: 'button', id: 'start-alignment', onclick: start }, 'Start'),
    status,
  );
  void adminApi
    .alignments()
    .then(({ jobs }) => (jobs[0] && !destroyed ? show(jobs[0].id) : undefined))
    .catch((err: unknown) => announce(errorMessage(err), 'error'));
  return {
    element,
    destroy() {
      destroyed = true;
      window.clearTimeout(timer);
    },
  };
}
