/** Boot: read the model from /health, then render the view for the current hash route. */
import { api } from './api.js';
import type { AppContext, ViewHandle } from './context.js';
import { parseHash, type Route } from './router.js';
import { announce, clearStatus, errorMessage, initStatus } from './status.js';
import { h, replaceChildren } from './dom.js';
import { renderAbout } from './views/about.js';
import { renderAdmin } from './views/admin.js';
import { renderAnalyse } from './views/analyse.js';
import { renderCase } from './views/case.js';
import { renderHistory } from './views/history.js';
import { renderPractice } from './views/practice.js';
import { renderSpecimen } from './views/specimen.js';
import { renderSpecimens } from './views/specimens.js';

const main = document.getElementById('main') as HTMLElement;
const modelInfo = document.getElementById('model-info') as HTMLElement;
initStatus(document.getElementById('status') as HTMLElement, document.getElementById('alert') as HTMLElement);

const ctx: AppContext = { model: null, classes: [] };
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
  notFound: 'Page not found',
};

function render(): void {
  const route = parseHash(location.hash);
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

async function loadModel(): Promise<void> {
  try {
    const health = await api.health();
    ctx.model = health.model;
    ctx.classes = health.model.classes;
    modelInfo.textContent = `Model: ${health.model.name} ${health.model.version}`;
    modelInfo.title = `Classes: ${health.model.classes.join(', ')}`;
    modelInfo.dataset.state = health.status === 'ok' ? 'ok' : 'degraded';
  } catch (err) {
    modelInfo.textContent = 'Model: unavailable';
    modelInfo.dataset.state = 'down';
    announce(`The model could not be reached: ${errorMessage(err)}`, 'error');
  }
}

// "#main" would be taken for a route: move focus without touching the hash.
document.querySelector('.skip-link')?.addEventListener('click', (e) => {
  e.preventDefault();
  main.focus();
});
window.addEventListener('hashchange', render);
// Classes feed the filters and the review form, so the first view waits for /health (it is fast).
void loadModel().then(render);
