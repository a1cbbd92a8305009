/** Boot: read the model from /health, then render the view for the current hash route. */
import { api } from './api.js';
import type { AppContext, ViewHandle } from './context.js';
import { parseHash, type Route } from './router.js';
import { announce, clearStatus, errorMessage, initStatus } from './status.js';
import { h, replaceChildren } from './dom.js';
import { renderAbout } from './views/about.js';
import { renderAccount } from './views/account.js';
import { DEVICE_MODE_CHANGED, deviceModeOn, deviceModel } from './local/device.js';
import { modelHeader, type ModelHeader } from './model-header.js';
import { MODEL_CHANGED, renderAdmin } from './views/admin.js';
import { renderAnalyse } from './views/analyse.js';
import { renderAudit } from './views/audit.js';
import { renderLogin } from './views/login.js';
import { renderSetup } from './views/setup.js';
import { renderCase } from './views/case.js';
import { renderHistory } from './views/history.js';
import { renderPractice } from './views/practice.js';
import { renderSpecimen } from './views/specimen.js';
import { renderSpecimens } from './views/specimens.js';

const main = document.getElementById('main') as HTMLElement;
const modelInfo = document.getElementById('model-info') as HTMLElement;
const accountBox = document.getElementById('account') as HTMLElement;
initStatus(document.getElementById('status') as HTMLElement, document.getElementById('alert') as HTMLElement);

const ctx: AppContext = { model: null, classes: [], auth: false, account: null };
let current: ViewHandle | null = null;
let firstRender = true;

const TITLES: Record<Route['name'], string> = {
  analyse: 'Analyse',
  history: 'Case history',
  case: 'Case',
  practice: 'Practice',
  about: 'About the model',
  specimens: 'Specimens',
  specimen: 'Specimen',
  admin: 'Model versions',
  login: 'Sign in',
  setup: 'Set up',
  audit: 'Audit trail',
  account: 'Your account',
  notFound: 'Page not found',
};

/** Accounts on and nobody signed in: only the sign-in and setup pages. */
const signedOut = () => ctx.auth && ctx.account === null;

function render(): void {
  let route = parseHash(location.hash);
  if (signedOut() && route.name !== 'setup') route = { name: 'login' };
  current?.destroy?.();
  current = null;
  if (!firstRender) clearStatus();
  document.title = `${TITLES[route.name]} — HematoVision`;
  for (const link of document.querySelectorAll<HTMLAnchorElement>('.site-nav a')) {
    const active =
      link.dataset.route === route.name ||
      (route.name === 'case' && link.dataset.route === 'history') ||
      (route.name === 'specimen' && link.dataset.route === 'specimens');
    if (active) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  const accountLink = document.getElementById('account-link');
  if (route.name === 'account') accountLink?.setAttribute('aria-current', 'page');
  else accountLink?.removeAttribute('aria-current');
  switch (route.name) {
    case 'analyse':
      current = renderAnalyse(main, ctx, route.query);
      break;
    case 'history':
      current = renderHistory(main, ctx, route.query);
      break;
    case 'case':
      current = renderCase(main, ctx, route.id);
      break;
    case 'practice':
      current = renderPractice(main, ctx);
      break;
    case 'about':
      current = renderAbout(main, ctx);
      break;
    case 'specimens':
      current = renderSpecimens(main, ctx);
      break;
    case 'specimen':
      current = renderSpecimen(main, ctx, route.id);
      break;
    case 'admin':
      current = renderAdmin(main, ctx);
      break;
    case 'login':
      current = signedOut() ? renderLogin(main, restart) : (location.replace('#/'), null);
      break;
    case 'setup':
      current = renderSetup(main, route.query, () => {
        location.hash = '#/';
        restart();
      });
      break;
    case 'audit':
      current = renderAudit(main);
      break;
    case 'account':
      current = renderAccount(main, ctx);
      break;
    default:
      replaceChildren(
        main,
        h('h1', { id: 'page-heading', tabindex: '-1' }, 'Page not found'),
        h(
          'p',
          null,
          'There is no page at ',
          h('code', null, route.path),
          '. ',
          h('a', { href: '#/' }, 'Go to Analyse'),
          '.',
        ),
      );
  }
  // Move focus to the new page's heading so keyboard and screen-reader users start at the content.
  if (!firstRender) document.getElementById('page-heading')?.focus();
  firstRender = false;
}

// An admin activated or rolled back a version: the header names the model now served.
window.addEventListener(MODEL_CHANGED, () => void loadModel());

let modelLoads = 0;

function showModel(header: ModelHeader): void {
  modelInfo.textContent = header.text;
  modelInfo.title = header.title;
  modelInfo.dataset.state = header.state;
}

async function loadModel(): Promise<void> {
  const load = ++modelLoads;
  try {
    const health = await api.health();
    ctx.model = health.model;
    ctx.classes = health.model.classes;
    showModel(modelHeader(health));
  } catch (err) {
    ctx.model = null;
    if (!deviceModeOn()) {
      showModel(modelHeader(null));
      announce(`The model could not be reached: ${errorMessage(err)}`, 'error');
      return;
    }
    // Offline (or the server down) with "analyse on this device" on: the page's own copy of the model still
    // analyses. Not awaited: the page renders meanwhile (starting the model takes a moment).
    showModel(modelHeader(null, 'loading'));
    void deviceModel().then(
      (m) => {
        if (load !== modelLoads) return;
        if (ctx.classes.length === 0) ctx.classes = m.card.classes;
        showModel(modelHeader(null, m.card));
        announce(
          'The server cannot be reached: images are analysed on this device, and nothing is stored.',
          'info',
        );
      },
      (deviceErr: unknown) => {
        if (load !== modelLoads) return;
        showModel(modelHeader(null, null));
        announce(
          `The model could not be reached: ${errorMessage(err)} On this device: ${errorMessage(deviceErr)}`,
          'error',
        );
      },
    );
  }
}

// Device mode switched while the server is unreachable: the header follows (the device's model, or none).
window.addEventListener(DEVICE_MODE_CHANGED, () => {
  if (ctx.model === null) void loadModel();
});

/** Who is signed in (GET /session): the header shows them, with a sign-out button. */
async function loadSession(): Promise<void> {
  try {
    const s = await api.session();
    ctx.auth = s.auth;
    ctx.account = s.account;
  } catch {
    // The server is down: /health below says so; views fail with their own messages.
  }
  // The audit trail and model versions are admins' pages; the rest is for every signed-in account.
  const adminOnly = ['audit', 'admin'];
  for (const link of document.querySelectorAll<HTMLAnchorElement>('.site-nav a')) {
    link.hidden = adminOnly.includes(link.dataset.route ?? '')
      ? ctx.auth && ctx.account?.role !== 'admin'
      : signedOut();
  }
  accountBox.hidden = !ctx.auth || !ctx.account;
  if (!ctx.auth || !ctx.account) return replaceChildren(accountBox);
  const signOut = h(
    'button',
    { type: 'button', class: 'btn btn--secondary btn--small', id: 'sign-out' },
    'Sign out',
  );
  signOut.addEventListener('click', () => {
    void api.signOut().finally(() => {
      location.hash = '#/';
      restart();
    });
  });
  replaceChildren(
    accountBox,
    // The name opens "Your account" (its password form).
    h(
      'a',
      {
        href: '#/account',
        id: 'account-link',
        class: 'account__name',
        title: `Your account: ${ctx.account.name} · ${ctx.account.role}`,
      },
      ctx.account.displayName,
    ),
    h(
      'span',
      { class: 'account__role muted' },
      ` (${ctx.account.role}${ctx.account.clinic ? `, ${ctx.account.clinic}` : ''}) `,
    ),
    signOut,
  );
}

/** Signed in or out: the session, the model (its classes feed the filters and review forms), the view. */
function restart(): void {
  // Both at once (health is public): the first view waits for one round trip, not two.
  void Promise.all([loadSession(), loadModel()]).then(() => {
    if (signedOut()) modelInfo.textContent = '';
    render();
  });
}

window.addEventListener('hv:signed-out', () => {
  if (!signedOut()) restart();
});

// "#main" would be taken for a route: move focus without touching the hash.
document.querySelector('.skip-link')?.addEventListener('click', (e) => {
  e.preventDefault();
  main.focus();
});
window.addEventListener('hashchange', render);
// Classes feed the filters and the review form, so the first view waits for /health (it is fast).
restart();
