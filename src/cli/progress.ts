import cliProgress from 'cli-progress';
import type { Io } from './io.js';

/**
 * A progress bar on `io.progress`, the terminal's stderr (stdout stays clean for --json/--csv); silent when
 * there is none (stderr is not a terminal, or the program runs in a test).
 */
export function progressBar(
  label: string,
  io: Io,
): {
  update(done: number, total: number, info?: string): void;
  stop(): void;
} {
  if (!io.progress) {
    return { update: () => {}, stop: () => {} };
  }
  const bar = new cliProgress.SingleBar(
    {
      format: `${label.padEnd(22)} {bar} {percentage}% | {value}/{total} | {eta_formatted} left {info}`,
      stream: io.progress,
      hideCursor: true,
      clearOnComplete: false,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    update(done, total, info = '') {
      if (!started) {
        bar.start(total, 0, { info });
        started = true;
      }
      bar.setTotal(total);
      bar.update(done, { info });
    },
    stop() {
      if (started) bar.stop();
    },
  };
}

/** Formats rows as an aligned plain-text table. */
export function table(header: string[], rows: (string | number)[][]): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) =>
    r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(cells[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join(
    '\n',
  );
}

export const pct = (x: number): string => (Number.isFinite(x) ? `${(100 * x).toFixed(1)}%` : '–');

/** Precision, recall, F1 and support of each class, as both `train` and `evaluate` print them. */
export function perClassTable(
  classes: readonly string[],
  perClass: Record<string, { precision: number; recall: number; f1: number; support: number }>,
): string {
  return table(
    ['class', 'precision', 'recall', 'F1', 'support'],
    classes.map((k) => {
      const p = perClass[k];
      return [k, pct(p.precision), pct(p.recall), pct(p.f1), p.support];
    }),
  );
}
