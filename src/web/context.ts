import type { Health } from './api.js';

/** What every view may read: the loaded model's identity and class list (empty when the server is down). */
export interface AppContext {
  model: Health['model'] | null;
  classes: string[];
}

/** A rendered view; `destroy` frees charts and aborts requests when the route changes. */
export interface ViewHandle {
  destroy?(): void;
}
