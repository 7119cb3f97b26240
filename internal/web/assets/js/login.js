// Sign-in page: POST /api/session sets the HttpOnly session cookie and
// returns the CSRF token the UI sends with every state-changing call.

import * as api from './api.js';
import { h, replace, field, errorBox } from './dom.js';

export async function render(main, params, page) {
  api.setSession(null);
  document.getElementById('nav').replaceChildren();
  const user = h('input', { type: 'text', name: 'username', autocomplete: 'username', required: true, autocapitalize: 'none', spellcheck: 'false' });
  const pass = h('input', { type: 'password', name: 'password', autocomplete: 'current-password', required: true });
  const msg = h('div', {});
  const button = h('button', { type: 'submit', class: 'primary' }, 'Sign in');
  const form = h('form', { class: 'card', 'aria-labelledby': 'signin-h', novalidate: true },
    field('Username', user), field('Password', pass),
    h('div', { class: 'actions' }, button));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    replace(msg);
    if (!user.value || !pass.value) {
      replace(msg, h('div', { class: 'alert error', role: 'alert' }, 'Enter your username and password.'));
      (user.value ? pass : user).focus();
      return;
    }
    button.disabled = true;
    try {
      api.setSession(await api.login(user.value, pass.value));
      page.signedIn();
    } catch (e) {
      if (e instanceof api.ApiError && e.status === 401) {
        replace(msg, h('div', { class: 'alert error', role: 'alert', 'data-error': 'BAD_CREDENTIALS' }, 'Wrong username or password.'));
      } else {
        replace(msg, errorBox(e, 'sign in'));
      }
      pass.value = '';
      pass.focus();
    } finally {
      button.disabled = false;
    }
  });
  const note = page.message();
  replace(main,
    h('h1', { id: 'signin-h' }, 'Sign in'),
    note ? h('div', { class: 'alert info', role: 'status', 'data-notice': 'session' }, note) : null,
    msg, form,
    h('p', { class: 'hint' }, 'Use a user of this control plane. API keys work with the CLI and the Admin API, not here.'));
  user.focus();
}
