// Stop and delete, with confirmation: used by the server table and the server page.

import { api } from './api.js';
import { banner, confirmDialog, problemText } from './ui.js';

// The API waits up to two minutes for the workflow to stop the container.
const STOP_TIMEOUT_MS = 150000;

async function run(server, button, { verb, busy, path, method }) {
  const before = button.textContent;
  button.disabled = true;
  button.textContent = busy;
  const source = Symbol(verb);
  try {
    const result = await api(path, { method, timeout: STOP_TIMEOUT_MS, idempotent: true, retries: 4 });
    banner.clear(source);
    return result;
  } catch (error) {
    if (error?.name !== 'AbortError') {
      banner.show(source, `Could not ${verb} ${server.name}: ${problemText(error)}`,
        { actions: [{ label: 'Dismiss', run: () => banner.clear(source) }] });
    }
    return null;
  } finally {
    if (button.isConnected) {
      button.disabled = false;
      button.textContent = before;
    }
  }
}

export async function stopServer(server, button) {
  const ok = await confirmDialog({
    title: `Stop ${server.name}?`,
    body: 'Players are disconnected and the room leaves the room list. The server can be deleted afterwards.',
    confirm: 'Stop server',
  });
  if (!ok) return null;
  return run(server, button, { verb: 'stop', busy: 'Stopping…', path: `/api/v1/servers/${server.id}/stop`, method: 'POST' });
}

export async function deleteServer(server, button) {
  const ok = await confirmDialog({
    title: `Delete ${server.name}?`,
    body: 'This stops the server if it runs and removes its container. It cannot be undone.',
    confirm: 'Delete server',
  });
  if (!ok) return null;
  return run(server, button, { verb: 'delete', busy: 'Deleting…', path: `/api/v1/servers/${server.id}`, method: 'DELETE' });
}
