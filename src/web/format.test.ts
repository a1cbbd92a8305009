import { describe, expect, it } from 'vitest';
import {
  differentialRows,
  displayLabel,
  formatDateTime,
  formatConfidence,
  formatPercent,
  NBSP,
  orderedProbabilities,
  rangeText,
} from './format.js';
import { caseHref, historyHref, parseHash, specimenHref } from './router.js';

describe('format', () => {
  it('formats probabilities as percentages that never wrap', () => {
    expect(formatPercent(0.8734)).toBe(`87.3${NBSP}%`);
    expect(formatPercent(1)).toBe(`100.0${NBSP}%`);
    expect(formatPercent(0.004, 0)).toBe(`0${NBSP}%`);
    expect(formatPercent(Number.NaN)).toBe('—');
    // A confidence has one format everywhere: 99.5 % is never "100 %" on the box and "99.5 %" on the card.
    expect(formatConfidence(0.995)).toBe(`99.5${NBSP}%`);
    expect(formatConfidence(0.995)).toBe(formatPercent(0.995));
  });

  it('shows class names as words and null as "no cell"', () => {
    expect(displayLabel('NEUTROPHIL')).toBe('Neutrophil');
    expect(displayLabel('not_a_white_cell')).toBe('Not a white cell');
    expect(displayLabel('ig')).toBe('Immature granulocyte');
    expect(displayLabel('band-cell')).toBe('Band cell');
    expect(displayLabel(null)).toBe('No white cell found');
  });

  it('formats timestamps as local YYYY-MM-DD HH:mm', () => {
    const d = new Date(2024, 4, 3, 9, 7, 30);
    expect(formatDateTime(d.toISOString())).toBe('2024-05-03 09:07');
    expect(formatDateTime(undefined)).toBe('—');
    expect(formatDateTime('not a date')).toBe('not a date');
  });

  it('describes a page of results', () => {
    expect(rangeText(0, 20, 57)).toBe('1–20 of 57');
    expect(rangeText(40, 17, 57)).toBe('41–57 of 57');
    expect(rangeText(0, 0, 0)).toBe('0 of 0');
  });

  it('lists every class of a differential in model order, with percentages summing to 100', () => {
    const rows = differentialRows({ NEUTROPHIL: 3, LYMPHOCYTE: 1, BASOPHIL: 0 }, [
      'EOSINOPHIL',
      'LYMPHOCYTE',
      'NEUTROPHIL',
    ]);
    expect(rows.map((r) => r.label)).toEqual(['EOSINOPHIL', 'LYMPHOCYTE', 'NEUTROPHIL', 'BASOPHIL']);
    expect(rows.map((r) => r.count)).toEqual([0, 1, 3, 0]);
    expect(rows[2].percent).toBeCloseTo(75);
    expect(rows.reduce((s, r) => s + r.percent, 0)).toBeCloseTo(100);
    expect(differentialRows({}, ['A']).map((r) => r.percent)).toEqual([0]);
    // Erythroblasts and platelets are not white cells: counted beside the differential, not in its rows.
    const eight = differentialRows({ neutrophil: 1, platelet: 5, erythroblast: 2 }, [
      'neutrophil',
      'erythroblast',
      'platelet',
    ]);
    expect(eight).toEqual([{ label: 'neutrophil', count: 1, percent: 100 }]);
  });

  it('orders probabilities by the model card, unknown classes last', () => {
    const out = orderedProbabilities({ b: 0.2, x: 0.1, a: 0.7 }, ['a', 'b', 'c']);
    expect(out).toEqual([
      { label: 'a', p: 0.7 },
      { label: 'b', p: 0.2 },
      { label: 'x', p: 0.1 },
    ]);
  });
});

describe('router', () => {
  it('parses hash routes', () => {
    expect(parseHash('')).toMatchObject({ name: 'analyse' });
    expect(parseHash('#/')).toMatchObject({ name: 'analyse' });
    const analyse = parseHash('#/?specimen=S%201');
    expect(analyse.name === 'analyse' && analyse.query.get('specimen')).toBe('S 1');
    expect(parseHash('#/specimens')).toEqual({ name: 'specimens' });
    expect(parseHash(specimenHref('a/b #7'))).toEqual({ name: 'specimen', id: 'a/b #7' });
    expect(parseHash('#/about')).toEqual({ name: 'about' });
    expect(parseHash('#/account')).toEqual({ name: 'account' });
    const history = parseHash('#/history?label=NEUTROPHIL&offset=20');
    expect(history.name).toBe('history');
    if (history.name === 'history') {
      expect(history.query.get('label')).toBe('NEUTROPHIL');
      expect(history.query.get('offset')).toBe('20');
    }
    expect(parseHash('#/cases/a%2Fb')).toEqual({ name: 'case', id: 'a/b' });
    expect(parseHash('#/nope')).toEqual({ name: 'notFound', path: '/nope' });
  });

  it('builds links that round-trip through the parser', () => {
    expect(historyHref({ label: '', reviewed: undefined, offset: 0 })).toBe('#/history');
    expect(historyHref({ label: 'MONOCYTE', reviewed: 'false', offset: 40 })).toBe(
      '#/history?label=MONOCYTE&reviewed=false&offset=40',
    );
    const id = '0b7c3c1e-8f7a-4c1e-9a55-0d1f2e3a4b5c';
    expect(parseHash(caseHref(id))).toEqual({ name: 'case', id });
  });
});
