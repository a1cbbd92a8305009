import type { Account, Health } from './api.js';

/**
 * What every view may read: the loaded model's identity and class list (empty when the server is down), and
 * who is signed in (`auth` false: accounts are off and reviewers type their name).
 */
export interface AppContext {
  model: Health['model'] | null;
  classes: string[];
  auth: boolean;
  account: Account | null;
}

/** A rendered view; `destroy` frees charts and aborts requests when the route changes. */
export interface ViewHandle {
  destroy?(): void;
}
