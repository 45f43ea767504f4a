// The console's shell: a hash router, the navigation, sign-out, and the page life cycle (each page
// gets an AbortSignal that ends its requests and streams when the user navigates away).

import { api, auth, onUnauthorized } from './api.js';
import { banner, clear } from './ui.js';
import * as signin from './pages/signin.js';
import * as servers from './pages/servers.js';
import * as server from './pages/server.js';
import * as uploadPage from './pages/upload.js';
import * as rooms from './pages/rooms.js';
import * as play from './pages/play.js';
import * as fleets from './pages/fleets.js';
import * as fleet from './pages/fleet.js';
import * as games from './pages/games.js';

const routes = [
  { pattern: /^\/signin$/, page: signin, nav: null, open: true },
  { pattern: /^\/servers$/, page: servers, nav: 'servers' },
  { pattern: /^\/servers\/([\w-]+)$/, page: server, nav: 'servers' },
  { pattern: /^\/upload$/, page: uploadPage, nav: 'upload' },
  { pattern: /^\/rooms$/, page: rooms, nav: 'rooms' },
  { pattern: /^\/play\/([\w.:-]+)$/, page: play, nav: 'rooms' },
  { pattern: /^\/fleets$/, page: fleets, nav: 'fleets' },
  { pattern: /^\/fleets\/([\w.-]+)$/, page: fleet, nav: 'fleets' },
  { pattern: /^\/games$/, page: games, nav: 'games' },
];

let current = null; // { controller, cleanup }
let config = null;

/** The installation's links and limits (GET /api/v1/config), read once per sign-in. */
export async function getConfig(signal) {
  if (!config) config = await api('/api/v1/config', { signal });
  return config;
}

export function navigate(path) {
  if (location.hash !== `#${path}`) location.hash = path;
  else render();
}

function signOut(reason) {
  auth.signOut();
  config = null;
  banner.clearAll();
  sessionStorage.setItem('gsf.signinMessage', reason ?? '');
  navigate('/signin');
}

onUnauthorized(() => {
  // On the sign-in page the form explains a refused key itself.
  if (auth.key && !location.hash.startsWith('#/signin')) {
    signOut('Your API key was not accepted (revoked or expired). Sign in again.');
  }
});

async function render() {
  const path = decodeURIComponent(location.hash.replace(/^#/, '')) || '/servers';
  const route = routes.find((r) => r.pattern.test(path));
  if (!route) { navigate('/servers'); return; }
  if (!route.open && !auth.key) {
    sessionStorage.setItem('gsf.next', path); // a route, never a secret
    navigate('/signin');
    return;
  }
  if (current) {
    current.controller.abort();
    try { current.cleanup?.(); } catch (error) { console.error(error); }
  }
  const controller = new AbortController();
  current = { controller, cleanup: null };
  const nav = document.getElementById('nav');
  nav.hidden = !auth.key;
  for (const link of nav.querySelectorAll('[data-nav]')) {
    if (link.dataset.nav === route.nav) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  const main = clear(document.getElementById('main'));
  const params = path.match(route.pattern).slice(1);
  const ctx = { signal: controller.signal, params, navigate, getConfig };
  try {
    const cleanup = await route.page.render(main, ctx);
    if (controller.signal.aborted) cleanup?.();
    else current.cleanup = cleanup;
  } catch (error) {
    if (controller.signal.aborted || error?.name === 'AbortError') return;
    console.error(error);
    main.append(Object.assign(document.createElement('p'), {
      className: 'error', textContent: `This page could not be shown: ${error.message ?? error}`,
    }));
  }
  if (!controller.signal.aborted) {
    const heading = main.querySelector('h1');
    if (heading && document.activeElement?.closest('main') === null) heading.focus({ preventScroll: false });
  }
  if (auth.key && !document.getElementById('version').textContent) {
    getConfig(controller.signal).then((c) => {
      document.getElementById('version').textContent = `gsf ${c.version}`;
    }).catch(() => {});
  }
}

// js/boot.js loads this module after the document is parsed, and retries when it cannot.
window.gsfStarted = true;
sessionStorage.removeItem('gsf.bootAttempts');
window.addEventListener('hashchange', render);
document.getElementById('sign-out').addEventListener('click', () => signOut(''));
document.querySelector('[data-skip]').addEventListener('click', (e) => {
  e.preventDefault(); // the router owns the hash
  document.getElementById('main').focus();
});
render();
