/**
 * Short teaching notes per cell type, shown in practice mode after each answer: what the cell looks like in
 * a May-Grünwald-Giemsa / Wright-stained smear and how to tell it from the cell it is most often taken for.
 */
export interface TeachingNote {
  /** What to look at first. */
  summary: string;
  /** The look-alike this note tells it apart from (a class name), when there is a usual one. */
  versus?: string;
  text: string;
}

export const TEACHING_NOTES: Record<string, TeachingNote> = {
  neutrophil: {
    summary: 'Lobed nucleus, pale pink cytoplasm with fine lilac granules.',
    versus: 'ig',
    text:
      'A segmented neutrophil (10–15 µm) has 2–5 nuclear lobes joined by thin chromatin strands and pale pink ' +
      'cytoplasm with fine, barely visible lilac granules. A band neutrophil has a curved, sausage- or U-shaped ' +
      'nucleus of fairly even width with no thin strand, but the same condensed chromatin and pink cytoplasm. ' +
      'A metamyelocyte (immature granulocyte) differs by its kidney-shaped nucleus, indented by less than half ' +
      'its width, with less condensed chromatin.',
  },
  eosinophil: {
    summary: 'Cytoplasm full of large, even, orange-red granules; usually two nuclear lobes.',
    versus: 'basophil',
    text:
      'An eosinophil (12–17 µm) usually has a bilobed, “spectacle” nucleus and cytoplasm packed with large, ' +
      'round, uniform orange-red granules that lie beside the nucleus rather than over it. A basophil’s granules ' +
      'are dark purple-black, coarse, uneven in size and scattered over the nucleus. A neutrophil’s granules are ' +
      'far finer and pale lilac.',
  },
  basophil: {
    summary: 'Coarse, dark purple-black granules that hide the nucleus.',
    versus: 'eosinophil',
    text:
      'The basophil (10–14 µm) is the rarest white cell in normal blood (under 2%). Its coarse, deep ' +
      'purple-black granules vary in size and lie over the nucleus, often hiding its outline; they dissolve ' +
      'easily in water, which can leave empty-looking vacuoles. Eosinophil granules are orange and even, and ' +
      'a neutrophil with toxic granulation still shows a clear lobed nucleus and pink cytoplasm.',
  },
  lymphocyte: {
    summary: 'Round, dense nucleus; a rim of clear sky-blue cytoplasm.',
    versus: 'monocyte',
    text:
      'A small lymphocyte (7–10 µm, about a red cell’s size) is almost all nucleus: round, dark, with coarse ' +
      'clumped chromatin and a thin rim of sky-blue cytoplasm. A large lymphocyte (up to ~15 µm) has more, ' +
      'clear pale-blue cytoplasm, sometimes a few red-purple granules, that may hug the neighbouring red ' +
      'cells. Unlike a monocyte, its nucleus stays round or slightly notched with dense chromatin, and its ' +
      'cytoplasm is clear rather than grey and vacuolated.',
  },
  monocyte: {
    summary: 'Large cell, folded nucleus with lacy chromatin, grey-blue cytoplasm.',
    versus: 'lymphocyte',
    text:
      'The monocyte is the largest normal white cell (12–20 µm). Its nucleus is folded, kidney- or ' +
      'horseshoe-shaped, with finer, lacy chromatin than a lymphocyte’s, and its abundant cytoplasm is dull ' +
      'grey-blue (“ground glass”), often with vacuoles and fine dust-like granules. A large lymphocyte has a ' +
      'rounder, denser nucleus and clearer blue cytoplasm without vacuoles; a metamyelocyte has pink, granular ' +
      'cytoplasm like a neutrophil’s.',
  },
  ig: {
    summary: 'Promyelocyte, myelocyte or metamyelocyte: a granulocyte not yet mature.',
    versus: 'neutrophil',
    text:
      'Immature granulocytes are normally absent from blood; they appear in infection, inflammation, pregnancy ' +
      'and marrow disease. A promyelocyte is large, with a round nucleus that may show nucleoli and coarse ' +
      'purple primary granules; a myelocyte has a round or oval off-centre nucleus and pinkish granular ' +
      'cytoplasm; a metamyelocyte has a kidney-shaped nucleus indented by less than half its width. Once the ' +
      'indentation exceeds half the width and the nucleus is an even curved band, the cell is a band neutrophil.',
  },
  erythroblast: {
    summary: 'Small, very dark round nucleus in cytoplasm coloured like a red cell.',
    versus: 'lymphocyte',
    text:
      'An erythroblast (nucleated red cell) in blood is usually a late normoblast: a small round nucleus, very ' +
      'dense and almost black, often off-centre, in cytoplasm that is pink-orange or greyish-lilac like the ' +
      'surrounding red cells. A small lymphocyte’s chromatin is clumped but not ink-black and its cytoplasm ' +
      'is sky blue. Erythroblasts are reported per 100 white cells and are not part of the white-cell ' +
      'differential.',
  },
  platelet: {
    summary: 'A small fragment with no nucleus: purple granular centre, pale blue edge.',
    text:
      'Platelets are 2–4 µm fragments of megakaryocyte cytoplasm with no nucleus: a purple granular centre and ' +
      'a paler blue rim, often lying in clumps. Giant platelets can approach a red cell’s size but still lack a ' +
      'nucleus, which tells them from a small lymphocyte or an erythroblast. Clumps in the smear can make an ' +
      'analyser’s platelet count falsely low.',
  },
};

/** The note for a class, or null for labels without one ('other', classes of another model). */
export function teachingNote(label: string): TeachingNote | null {
  return Object.hasOwn(TEACHING_NOTES, label) ? TEACHING_NOTES[label] : null;
}
