// Sign in with an API key. The key is kept in this tab's session storage only.

import { ApiError, api, auth } from '../api.js';
import { h, pageHeading, problemText } from '../ui.js';

export async function render(main, { signal, navigate }) {
  const message = sessionStorage.getItem('gsf.signinMessage');
  sessionStorage.removeItem('gsf.signinMessage');
  const error = h('p', { id: 'signin-error', class: 'form-error', role: 'alert' }, message || '');
  error.hidden = !message;
  const input = h('input', { id: 'api-key', name: 'api-key', type: 'password', required: true,
    autocomplete: 'off', spellcheck: 'false', 'aria-describedby': 'api-key-hint signin-error' });
  const submit = h('button', { type: 'submit', class: 'button button-primary' }, 'Sign in');
  const form = h('form', { class: 'card form narrow', method: 'post', novalidate: true },
    h('div', { class: 'field' },
      h('label', { for: 'api-key' }, 'API key'),
      input,
      h('p', { id: 'api-key-hint', class: 'hint' },
        'Starts with gsf_. `gsf up` prints the admin key and keeps it in .gsf-data/admin.key. ',
        'It stays in this browser tab only and is forgotten when you sign out or close the tab.')),
    error,
    h('div', { class: 'actions' }, submit));

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const key = input.value.trim();
    error.hidden = true;
    if (!key) {
      error.textContent = 'Enter your API key.';
      error.hidden = false;
      input.setAttribute('aria-invalid', 'true');
      input.focus();
      return;
    }
    submit.disabled = true;
    submit.textContent = 'Signing in…';
    auth.signIn(key);
    try {
      await api('/api/v1/config', { signal, retries: 3 });
      input.value = '';
      navigate(sessionStorage.getItem('gsf.next') || '/servers');
      sessionStorage.removeItem('gsf.next');
    } catch (err) {
      auth.signOut();
      if (err?.name === 'AbortError') return;
      error.textContent = err instanceof ApiError && err.status === 401
        ? 'That API key was not accepted.' : `Could not sign in: ${problemText(err)}`;
      error.hidden = false;
      input.setAttribute('aria-invalid', 'true');
      input.focus();
    } finally {
      submit.disabled = false;
      submit.textContent = 'Sign in';
    }
  });

  if (auth.key) {
    main.append(pageHeading('Signed in'), h('p', {}, 'You are signed in. ', h('a', { href: '#/servers' }, 'Go to your servers'), '.'));
    return undefined;
  }
  main.append(pageHeading('Sign in'), form);
  input.focus();
  return undefined;
}
