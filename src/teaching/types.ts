/** The bundled teaching set's shape and provenance: pure data, shared by the server and the web app. */

/** The PBC classes, in the order the teaching set lists them (the model's own class names). */
export const TEACHING_CLASSES = [
  'neutrophil',
  'eosinophil',
  'basophil',
  'lymphocyte',
  'monocyte',
  'ig',
  'erythroblast',
  'platelet',
] as const;

export const TEACHING_SOURCE =
  'PBC dataset: Acevedo A, Merino A, Alférez S, Molina Á, Boldú L, Rodellar J. "A dataset of microscopic ' +
  'peripheral blood cell images for development of automatic recognition systems". Data in Brief 30 (2020) ' +
  '105474, doi:10.1016/j.dib.2020.105474; images from Mendeley Data, doi:10.17632/snkd93bnjr.1. Labelled by ' +
  'expert clinical pathologists, Hospital Clinic of Barcelona (CellaVision DM96, May-Grünwald-Giemsa).';

export const TEACHING_LICENSE = 'CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/)';

export interface TeachingCell {
  /** Stable and opaque (it must not give the label away), e.g. "pbc-1a2b3c4d". */
  id: string;
  /** Path of the image inside the teaching folder. */
  file: string;
  /** The expert's label: one of TEACHING_CLASSES. */
  label: string;
  /** A finer type the PBC file name gives (band neutrophil, myelocyte…). */
  subtype?: string;
  /** The image's file name in the PBC dataset. */
  sourceFile: string;
  width: number;
  height: number;
}

export interface TeachingManifest {
  source: string;
  license: string;
  /** How the images differ from the originals (CC BY asks to say so). */
  modified: string;
  seed: number;
  cells: TeachingCell[];
}
