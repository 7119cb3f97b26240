// Router and shell of the livemigrate web UI. Pages are hash routes so the
// server serves one document; each page module exports render(main, params,
// page) and may return a cleanup function (timers, polls).

import * as api from './api.js';
import { h, replace, announce } from './dom.js';
import * as login from './login.js';
import * as home from './home.js';
import * as org from './org.js';
import * as project from './project.js';
import * as wizard from './wizard.js';
import * as walkthrough from './walkthrough.js';
import * as report from './report.js';
import * as prepare from './prepare.js';

const routes = [
  [/^\/?$/, home],
  [/^\/login$/, login],
  [/^\/orgs\/([^/]+)\/live-migration$/, org, ['orgId']],
  [/^\/groups\/([^/]+)$/, project, ['groupId']],
  [/^\/groups\/([^/]+)\/clusters\/([^/]+)\/prepare$/, prepare, ['groupId', 'cluster']],
  [/^\/groups\/([^/]+)\/clusters\/([^/]+)\/migrate$/, wizard, ['groupId', 'cluster']],
  [/^\/groups\/([^/]+)\/migrations\/([^/]+)$/, walkthrough, ['groupId', 'migrationId']],
  [/^\/groups\/([^/]+)\/migrations\/([^/]+)\/report$/, report, ['groupId', 'migrationId']],
];

let cleanup = null;
let generation = 0;
let returnTo = '';
let signInMessage = '';

function path() { return decodeURI(location.hash.replace(/^#/, '')) || '/'; }

/** go navigates to a hash route. */
export function go(p) { location.hash = `#${p}`; }

function renderNav() {
  const nav = document.getElementById('nav');
  const s = api.session();
  if (!s) { replace(nav); return; }
  replace(nav,
    h('a', { href: '#/' }, 'Organizations'),
    h('span', { class: 'spacer' }),
    h('span', { 'data-user': s.username }, `Signed in as ${s.username}`),
    h('button', { type: 'button', onclick: signOut }, 'Sign out'));
}

async function signOut() {
  try { await api.logout(); } catch { /* the session may already be gone */ }
  api.setSession(null);
  signInMessage = 'You are signed out.';
  returnTo = '';
  go('/login');
}

async function route() {
  if (cleanup) { try { cleanup(); } catch { /* ignore */ } cleanup = null; }
  const gen = ++generation;
  const main = document.getElementById('main');
  const p = path();
  if (p !== '/login' && !api.session()) {
    try {
      api.setSession(await api.whoami());
    } catch (e) {
      if (gen !== generation) return;
      if (!(e instanceof api.ApiError) || e.status !== 401) {
        replace(main, h('div', { class: 'alert error', role: 'alert' }, `The control plane cannot be reached: ${e.message}`));
        return;
      }
      returnTo = p;
      go('/login');
      return;
    }
    if (gen !== generation) return;
  }
  renderNav();
  let mod = null; let params = {};
  for (const [re, m, names] of routes) {
    const match = re.exec(p);
    if (match) {
      mod = m;
      (names || []).forEach((n, i) => { params[n] = decodeURIComponent(match[i + 1]); });
      break;
    }
  }
  if (!mod) {
    replace(main, h('h1', { tabindex: '-1' }, 'Page not found'), h('p', {}, h('a', { href: '#/' }, 'Go to your organizations')));
    focusHeading(main);
    return;
  }
  const page = {
    alive: () => gen === generation,
    go,
    // signedIn is called by the sign-in page.
    signedIn: () => { const to = returnTo || '/'; returnTo = ''; signInMessage = ''; go(to); },
    message: () => signInMessage,
    // reload renders the current page again (after a change it made).
    reload: () => route(),
  };
  replace(main, h('p', { class: 'muted' }, 'Loading…'));
  try {
    const c = await mod.render(main, params, page);
    if (gen === generation) cleanup = c || null; else if (c) c();
  } catch (e) {
    if (gen === generation && !(e instanceof api.ApiError && e.status === 401)) {
      replace(main, h('div', { class: 'alert error', role: 'alert' }, `This page failed to load: ${e.message}`));
    }
  }
  if (gen === generation) focusHeading(main);
}

// focusHeading moves focus to the page's heading (so screen readers announce
// the new page), unless the page already focused a control of its own.
function focusHeading(main) {
  const h1 = main.querySelector('h1');
  if (h1) document.title = `${h1.textContent} · livemigrate`;
  const active = document.activeElement;
  if (active && active !== main && main.contains(active)) return;
  if (h1) {
    h1.setAttribute('tabindex', '-1');
    h1.focus({ preventScroll: false });
  }
}

// A 401 anywhere means the session expired or was ended elsewhere: back to
// sign-in, then back to where the user was.
window.addEventListener('lm:unauthenticated', () => {
  if (path() === '/login') return;
  returnTo = path();
  signInMessage = 'Your session has expired or was ended. Sign in again to continue.';
  announce(signInMessage);
  go('/login');
});

window.addEventListener('hashchange', route);
route();
