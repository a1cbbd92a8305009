/** Analyse page: choose or drop images, POST them, show one result card per image and the differential. */
import {
  api,
  ApiError,
  isCaseError,
  MAX_FILES,
  type CaseError,
  type CaseResult,
  type PredictResponse,
} from '../api.js';
import { differentialSection } from '../components/differential.js';
import { probabilityTable } from '../components/probabilities.js';
import { confidenceLine, predictionLabel } from '../components/review.js';
import { screenUploads } from '../upload.js';
import { specimen } from '../components/specimen.js';
import type { AppContext, ViewHandle } from '../context.js';
import { h, replaceChildren } from '../dom.js';
import { displayLabel, formatConfidence } from '../format.js';
import { caseHref, specimenHref } from '../router.js';
import {
  deviceModeOn,
  deviceSwitch,
  isDeviceCase,
  predictOnDevice,
  saveDeviceCase,
} from '../local/device.js';
import { announce, errorMessage } from '../status.js';

// The last batch survives navigation so "back" from a case page returns to the results.
let lastResult: { response: PredictResponse; submitted: number } | null = null;

function resultCard(c: CaseResult, classes: string[]): HTMLElement {
  const { root: figure, toggle } = specimen(c, 'card');
  const headingId = `result-${c.id}`;
  const found = c.label !== null;
  return h(
    'article',
    { class: 'card result-card', 'aria-labelledby': headingId, 'data-case-id': c.id },
    h('h3', { class: 'result-card__file', id: headingId }, c.file),
    h(
      'div',
      { class: 'result-card__body' },
      h('div', { class: 'result-card__media' }, figure, h('div', { class: 'result-card__tools' }, toggle)),
      h(
        'div',
        { class: 'result-card__summary' },
        h(
          'p',
          { class: 'prediction' },
          h('span', { class: 'prediction__caption' }, found ? 'Predicted type' : 'Result'),
          predictionLabel(c.label),
        ),
        found ? confidenceLine(c) : null,
        c.message ? h('p', { class: 'notice' }, c.message) : null,
        !found && !c.message ? h('p', { class: 'notice' }, 'No white cell was found in this image.') : null,
        c.cells.length > 1
          ? h(
              'p',
              { class: 'muted' },
              `${c.cells.length} white cells located: `,
              c.cells
                .map(
                  (cell, i) => `${i + 1}. ${displayLabel(cell.label)} ${formatConfidence(cell.confidence)}`,
                )
                .join(' · '),
            )
          : null,
        Object.keys(c.probabilities).length ? probabilityTable(c.probabilities, classes, c.label) : null,
        isDeviceCase(c)
          ? deviceNote(c.id)
          : h('p', { class: 'result-card__link' }, h('a', { href: caseHref(c.id) }, 'Open case and review')),
      ),
    ),
  );
}

/**
 * A device result says it is not stored, and offers to store it: the image is sent then, and only then, and
 * the server's own analysis of it becomes a case like any other.
 */
function deviceNote(id: string): HTMLElement {
  const status = h('span', { class: 'result-card__save-status', role: 'status' });
  const save = h('button', { type: 'button', class: 'btn result-card__save' }, 'Save to the server');
  const note = h(
    'p',
    { class: 'muted result-card__local' },
    'Analysed on this device; not stored on the server. ',
    save,
    ' ',
    status,
  );
  save.addEventListener('click', () => {
    save.disabled = true;
    status.textContent = 'Sending the image…';
    saveDeviceCase(id).then(
      (stored) =>
        replaceChildren(
          note,
          'Saved: the server analysed the image again and stored its answer',
          stored.label ? ` (${displayLabel(stored.label)} ${formatConfidence(stored.confidence)}). ` : '. ',
          h('a', { href: caseHref(stored.id) }, 'Open case and review'),
        ),
      (err: unknown) => {
        save.disabled = false;
        status.textContent = `Not saved: ${errorMessage(err)}`;
      },
    );
  });
  return note;
}

function errorCard(e: CaseError): HTMLElement {
  return h(
    'article',
    { class: 'card result-card result-card--error', 'data-error': e.error },
    h('h3', { class: 'result-card__file' }, e.file),
    h('p', { class: 'error-text' }, h('strong', null, 'Not analysed: '), e.message),
  );
}

export function renderAnalyse(
  main: HTMLElement,
  ctx: AppContext,
  query: URLSearchParams = new URLSearchParams(),
): ViewHandle {
  let busy = false;
  // The specimen (slide) the batch goes into: chosen from the list, or none.
  const wanted = query.get('specimen') ?? '';
  const specimenSelect = h(
    'select',
    { id: 'specimen-select', 'aria-describedby': 'specimen-hint' },
    h('option', { value: '' }, 'No specimen'),
    wanted ? h('option', { value: wanted, selected: true }, wanted) : null,
  );
  void api
    .listSpecimens({ sort: 'updated', limit: 200 })
    .then(({ specimens }) => {
      const chosen = specimenSelect.value;
      replaceChildren(
        specimenSelect,
        h('option', { value: '' }, 'No specimen'),
        specimens.map((s) =>
          h('option', { value: s.id, selected: s.id.toLowerCase() === chosen.toLowerCase() }, s.id),
        ),
      );
    })
    .catch(() => {
      // The list is a convenience: without it the batch goes into the specimen of the link, or none.
    });
  const specimenField = h(
    'p',
    { class: 'option specimen-pick' },
    h('label', { for: 'specimen-select' }, 'Specimen '),
    specimenSelect,
    ' ',
    h('a', { href: '#/specimens' }, 'New specimen…'),
    h(
      'span',
      { class: 'muted', id: 'specimen-hint' },
      ' — the batch is added to this slide’s differential count.',
    ),
  );

  const dropHint = h('p', { class: 'muted', id: 'drop-hint' });
  // On the device nothing is stored and nothing joins a specimen: the page says so and hides the picker.
  const showDeviceMode = (on: boolean): void => {
    dropHint.textContent =
      `JPEG, PNG, BMP or TIFF; up to ${MAX_FILES} images per batch. ` +
      (on
        ? 'Each image is analysed in this browser; nothing is uploaded or stored unless you save a result.'
        : 'Each image is analysed and stored as a case.');
    specimenField.hidden = on;
  };

  const input = h('input', {
    type: 'file',
    id: 'file-input',
    class: 'visually-hidden',
    multiple: true,
    accept: 'image/*',
    'aria-describedby': 'drop-hint',
  });
  const chooseLabel = h(
    'label',
    { for: 'file-input', class: 'btn btn--primary file-button' },
    'Choose images…',
  );
  // On phones and tablets (coarse pointer; see styles.css) a second button opens the back camera directly:
  // a clinic without a slide scanner photographs the smear through the microscope's eyepiece.
  const camera = h('input', {
    type: 'file',
    id: 'camera-input',
    class: 'visually-hidden',
    accept: 'image/*',
    capture: 'environment',
    'aria-describedby': 'drop-hint',
  });
  const cameraLabel = h(
    'label',
    { for: 'camera-input', class: 'btn btn--secondary file-button camera-button' },
    'Take a photo…',
  );
  const drop = h(
    'div',
    { class: 'dropzone', id: 'dropzone' },
    h('p', { class: 'dropzone__title' }, 'Drop blood-smear images here'),
    h('p', { class: 'dropzone__or' }, 'or'),
    input,
    chooseLabel,
    camera,
    cameraLabel,
    dropHint,
  );
  // Offered only when the model is calibrated for it.
  const tta = h('input', { type: 'checkbox', id: 'tta', 'aria-describedby': 'tta-hint' });
  const ttaOption = ctx.model?.tta
    ? h(
        'p',
        { class: 'option' },
        tta,
        h('label', { for: 'tta' }, ' Test-time augmentation'),
        h(
          'span',
          { class: 'muted', id: 'tta-hint' },
          ' — read each cell in its 8 flips and turns: more accurate, 8× slower.',
        ),
      )
    : null;
  const results = h('div', { class: 'results', id: 'results', 'aria-busy': 'false' });

  const headingId = 'page-heading';
  replaceChildren(
    main,
    h('h1', { id: headingId, tabindex: '-1' }, 'Analyse images'),
    h(
      'p',
      { class: 'lede' },
      'The model classifies each located white blood cell. Treat every result as a suggestion for a trained reviewer.',
    ),
    h(
      'section',
      { 'aria-label': 'Upload images' },
      specimenField,
      drop,
      ttaOption,
      deviceSwitch(showDeviceMode),
    ),
    results,
  );

  function showResults(response: PredictResponse, submitted: number): void {
    const ok = response.cases.filter((c): c is CaseResult => !isCaseError(c));
    const failed = response.cases.filter(isCaseError);
    const noCell = ok.filter((c) => c.label === null).length;
    const parts: HTMLElement[] = [];
    const into = ok.find((c) => c.specimen)?.specimen;
    if (into)
      parts.push(
        h(
          'p',
          { class: 'notice specimen-added' },
          `Added to specimen ${into}. `,
          h('a', { href: specimenHref(into) }, `Open specimen ${into}`),
          ' to see its whole differential and review its cells.',
        ),
      );
    if (submitted > 1) {
      const diff = differentialSection(response.differential, ctx.classes, {
        images: submitted,
        noCell,
        rejected: failed.length,
      });
      parts.push(diff);
    }
    if (response.domain)
      parts.push(
        h(
          'p',
          {
            class: `domain-note${response.domain.unfamiliar ? ' domain-note--unfamiliar' : ''}`,
            role: 'note',
          },
          response.domain.summary,
        ),
      );
    replaceChildren(
      results,
      h('h2', { class: 'results__heading' }, submitted > 1 ? `Results for ${submitted} images` : 'Result'),
      parts,
      h(
        'div',
        { class: 'result-grid' },
        response.cases.map((c) => (isCaseError(c) ? errorCard(c) : resultCard(c, ctx.classes))),
      ),
    );
  }

  async function analyse(chosen: File[]): Promise<void> {
    if (chosen.length === 0) return;
    // Checked here first: a file the server would refuse is never sent over a slow link.
    const { ok: files, refused } = screenUploads(chosen);
    if (files.length === 0) {
      replaceChildren(
        results,
        h('h2', { class: 'results__heading' }, 'Result'),
        h('div', { class: 'result-grid' }, refused.map(errorCard)),
      );
      announce(`Nothing was sent: ${refused.map((r) => `${r.file}: ${r.message}`).join(' ')}`, 'error');
      return;
    }
    if (files.length > MAX_FILES) {
      announce(
        `At most ${MAX_FILES} images per batch; ${files.length} were chosen. Split them into smaller batches.`,
        'error',
      );
      return;
    }
    if (busy) {
      announce('The current batch is still being analysed; choose the next images when it is done.', 'error');
      return;
    }
    // A flag, not input.disabled: disabling the focused input would drop keyboard focus to the page body.
    busy = true;
    drop.classList.add('dropzone--busy');
    results.setAttribute('aria-busy', 'true');
    announce(`Analysing ${files.length} image${files.length > 1 ? 's' : ''}…`, 'busy');
    try {
      const specimenId = specimenSelect.value || undefined;
      // On the device nothing is uploaded, so nothing joins a specimen (a specimen is the server's record).
      const sent = deviceModeOn()
        ? await predictOnDevice(files, ctx)
        : await api.predict(files, { tta: tta.checked, specimen: specimenId });
      // Refused files keep their place in the list, as the server's own refusals do.
      const response = { ...sent, cases: [...sent.cases, ...refused] };
      lastResult = { response, submitted: chosen.length };
      if (results.isConnected) showResults(response, chosen.length);
      const failed = response.cases.filter(isCaseError).length;
      const done = response.cases.length - failed;
      announce(
        `Analysed ${done} of ${chosen.length} image${chosen.length > 1 ? 's' : ''}${failed ? `; ${failed} could not be read` : ''}.`,
        failed ? 'error' : 'success',
      );
    } catch (err) {
      lastResult = null;
      // The server answers 4xx with no cases when no file of the batch could be read: show that as a card.
      if (results.isConnected) {
        replaceChildren(
          results,
          h('h2', { class: 'results__heading' }, 'Result'),
          h(
            'div',
            { class: 'result-grid' },
            errorCard({
              file: files.length === 1 ? files[0].name : `${files.length} files`,
              error: err instanceof ApiError ? err.code : 'error',
              message: errorMessage(err),
            }),
          ),
        );
      }
      announce(`Analysis failed: ${errorMessage(err)}`, 'error');
    } finally {
      busy = false;
      input.value = '';
      camera.value = '';
      drop.classList.remove('dropzone--busy');
      results.setAttribute('aria-busy', 'false');
    }
  }

  input.addEventListener('change', () => void analyse([...(input.files ?? [])]));
  camera.addEventListener('change', () => void analyse([...(camera.files ?? [])]));
  drop.addEventListener('dragover', (e) => {
    e.preventDefault();
    if (e.dataTransfer) e.dataTransfer.dropEffect = 'copy';
    drop.classList.add('dropzone--over');
  });
  drop.addEventListener('dragleave', (e) => {
    if (!drop.contains(e.relatedTarget as Node | null)) drop.classList.remove('dropzone--over');
  });
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('dropzone--over');
    void analyse([...(e.dataTransfer?.files ?? [])]);
  });

  if (lastResult) showResults(lastResult.response, lastResult.submitted);

  // A running upload is not aborted on navigation: the server stores its cases anyway, and the results
  // are shown when the user comes back.
  return {};
}
