/** The smear image with located cells outlined, and a toggle to its class-activation heat map. */
import { api, type CaseResult, type CellResult } from '../api.js';
import { h } from '../dom.js';
import { displayLabel, formatConfidence } from '../format.js';

export interface Specimen {
  root: HTMLElement;
  toggle: HTMLButtonElement;
}

export interface SpecimenOptions {
  /** Outline only these cells (default: every located cell). */
  cells?: CellResult[];
  /** Hide the model's output on the image (labels, needs-review dashes): for practice questions. */
  blind?: boolean;
  /** Alternative text of the original image (default: names the file, which may give the answer away). */
  alt?: string;
}

/**
 * Boxes are positioned in percent of the image's own pixel size, so they follow the image at any displayed
 * size without re-measuring on resize.
 */
function drawBoxes(
  layer: HTMLElement,
  cells: CellResult[],
  blind: boolean,
  width: number,
  height: number,
): void {
  layer.replaceChildren();
  if (!width || !height) return;
  cells.forEach((cell, i) => {
    const { x, y, width: w, height: bh } = cell.box;
    const number = cells.length > 1 ? `${i + 1}` : '';
    const full = `${number ? `${number}. ` : ''}${displayLabel(cell.label)} ${formatConfidence(cell.confidence)}`;
    const placement = [
      y / height < 0.12 ? 'cell-box__label--inside' : '',
      (x + w / 2) / width > 0.6 ? 'cell-box__label--right' : '',
    ].join(' ');
    const label = h(
      'span',
      { class: `cell-box__label ${placement}`, 'data-full': full, 'data-short': number },
      full,
    );
    const box = blind
      ? h('div', { class: 'cell-box' })
      : h('div', { class: `cell-box${cell.needsReview ? ' cell-box--review' : ''}` }, label);
    // CSSOM, not a style attribute: the server's CSP (style-src 'self') blocks inline style attributes.
    Object.assign(box.style, {
      left: `${(x / width) * 100}%`,
      top: `${(y / height) * 100}%`,
      width: `${(w / width) * 100}%`,
      height: `${(bh / height) * 100}%`,
    });
    layer.append(box);
  });
}

/**
 * Labels have a fixed font size while boxes scale with the image, so close cells can collide on a small
 * thumbnail: every label that overlaps another shrinks to its number (the text beside the image lists them).
 */
function declutter(layer: HTMLElement): void {
  const labels = [...layer.querySelectorAll<HTMLElement>('.cell-box__label')];
  for (const l of labels) l.textContent = l.dataset.full ?? '';
  const rects = labels.map((l) => l.getBoundingClientRect());
  const overlap = (a: DOMRect, b: DOMRect) =>
    a.left < b.right && a.right > b.left && a.top < b.bottom && a.bottom > b.top;
  labels.forEach((l, i) => {
    if (l.dataset.short && rects.some((r, k) => k !== i && overlap(rects[i], r)))
      l.textContent = l.dataset.short;
  });
}

export function specimen(c: CaseResult, size: 'card' | 'large', options: SpecimenOptions = {}): Specimen {
  const cells = options.cells ?? c.cells;
  const blind = options.blind ?? false;
  const originalAlt =
    options.alt ??
    `Blood smear image ${c.file}${cells.length ? `, ${cells.length} located white cell${cells.length > 1 ? 's' : ''} outlined` : ''}`;
  const img = h('img', {
    src: api.imageUrl(c),
    alt: originalAlt,
    class: 'specimen__img',
    decoding: 'async',
  });
  const layer = h('div', { class: 'specimen__boxes', 'aria-hidden': 'true' });
  const frame = h('div', { class: `specimen specimen--${size}` }, img, layer);

  let showingHeatmap = false;
  let natural = { width: c.width ?? 0, height: c.height ?? 0 };
  const redraw = () => {
    drawBoxes(layer, cells, blind, natural.width, natural.height);
    if (cells.length > 1 && !blind) requestAnimationFrame(() => declutter(layer));
  };
  if (cells.length > 1 && !blind && typeof ResizeObserver !== 'undefined') {
    new ResizeObserver(() => declutter(layer)).observe(frame);
  }
  img.addEventListener('load', () => {
    // The heat map may be rendered at another size; boxes belong to the original's coordinates.
    if (!showingHeatmap && !c.width) {
      natural = { width: img.naturalWidth, height: img.naturalHeight };
      redraw();
    }
  });
  img.addEventListener('error', () => {
    frame.classList.add('specimen--broken');
    img.alt = showingHeatmap ? 'Heat map could not be loaded' : 'Image could not be loaded';
  });
  if (natural.width) redraw();

  const toggle = h('button', {
    type: 'button',
    class: 'btn btn--secondary btn--small',
    'aria-pressed': 'false',
    disabled: !c.heatmapUrl,
    title: c.heatmapUrl ? 'Show where the model looked (class activation map)' : 'No heat map for this image',
  });
  toggle.textContent = 'Heat map';
  toggle.addEventListener('click', () => {
    showingHeatmap = !showingHeatmap;
    toggle.setAttribute('aria-pressed', String(showingHeatmap));
    frame.classList.remove('specimen--broken');
    frame.classList.toggle('specimen--heatmap', showingHeatmap);
    img.src = showingHeatmap ? (api.heatmapUrl(c) ?? api.imageUrl(c)) : api.imageUrl(c);
    img.alt = showingHeatmap
      ? `Heat map of ${c.file}: warmer colours mark regions that drove the prediction`
      : originalAlt;
  });

  const root = h('figure', { class: 'specimen-figure' }, frame);
  return { root, toggle };
}
