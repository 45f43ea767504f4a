// Talking to the API: the key (session storage only, sent as a header, never in a URL), requests
// with timeouts and backoff on network errors, uploads with progress, and live streams
// (Server-Sent Events and NDJSON read with fetch, because EventSource cannot send headers).

import { banner } from './ui.js';

const KEY = 'gsf.apiKey';
const REQUEST_TIMEOUT_MS = 15000;
const MAX_BACKOFF_MS = 15000;
const RETRYABLE_STATUS = new Set([502, 503, 504]);

export const auth = {
  get key() { return sessionStorage.getItem(KEY); },
  signIn(key) { sessionStorage.setItem(KEY, key); },
  signOut() { sessionStorage.removeItem(KEY); },
};

/** An answer with an error status; `problem` is its application/problem+json body when it has one. */
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
    this.name = 'ApiError';
    this.status = status;
    this.problem = problem;
  }
}

/** The request never got an answer (offline, refused, timed out). */
export class NetworkError extends Error {
  constructor(message) {
    super(message);
    this.name = 'NetworkError';
  }
}

// The app sets this: what to do when the key is refused (sign out, go to the sign-in page).
let unauthorizedHandler = () => {};
export function onUnauthorized(fn) { unauthorizedHandler = fn; }

export function backoffMs(attempt) {
  const base = Math.min(MAX_BACKOFF_MS, 500 * 2 ** attempt);
  return Math.round(base * (0.8 + Math.random() * 0.4));
}

function headers(extra = {}) {
  const out = { Accept: 'application/json', ...extra };
  if (auth.key) out.Authorization = `Bearer ${auth.key}`;
  return out;
}

async function readProblem(resp) {
  try {
    const type = resp.headers.get('content-type') ?? '';
    if (type.includes('json')) return await resp.json();
    const text = await resp.text();
    return { detail: text.slice(0, 300) || resp.statusText };
  } catch {
    return { detail: resp.statusText };
  }
}

function isAbort(error) {
  return error?.name === 'AbortError';
}

/** Wait `ms`, showing a countdown in the banner; "Retry now" ends the wait early. */
function waitWithBanner(source, what, ms, attempt, signal) {
  return new Promise((resolve, reject) => {
    const until = Date.now() + ms;
    let timer = null;
    const done = () => {
      clearInterval(timer);
      signal?.removeEventListener('abort', onAbort);
      resolve();
    };
    const onAbort = () => {
      clearInterval(timer);
      banner.clear(source);
      reject(new DOMException('aborted', 'AbortError'));
    };
    const render = () => {
      const left = Math.max(0, Math.ceil((until - Date.now()) / 1000));
      banner.show(source, `${what} Retrying in ${left} s (attempt ${attempt + 1}).`,
        { actions: [{ label: 'Retry now', run: done }] });
      if (Date.now() >= until) done();
    };
    if (signal?.aborted) { onAbort(); return; }
    signal?.addEventListener('abort', onAbort);
    timer = setInterval(render, 250);
    render();
  });
}

/**
 * Call the API. GETs (and whatever is marked `idempotent`) are retried with backoff on network
 * errors and 502/503/504, with a banner saying so; `retries` bounds that (Infinity for page loads,
 * which the page's signal cancels on navigation). Resolves to the JSON body (or null for 204).
 */
export async function api(path, { method = 'GET', json, body, signal, timeout = REQUEST_TIMEOUT_MS,
  idempotent, retries, quiet = false } = {}) {
  const canRetry = idempotent ?? (method === 'GET' || method === 'DELETE' || method === 'PUT');
  const maxRetries = canRetry ? (retries ?? (method === 'GET' ? Infinity : 4)) : 0;
  const source = Symbol(path);
  const extra = json !== undefined ? { 'Content-Type': 'application/json' } : {};
  for (let attempt = 0; ; attempt += 1) {
    let problem = null;
    try {
      const resp = await fetch(path, {
        method, headers: headers(extra), body: json !== undefined ? JSON.stringify(json) : body,
        signal: signal ? AbortSignal.any([signal, AbortSignal.timeout(timeout)]) : AbortSignal.timeout(timeout),
        cache: 'no-store',
      });
      if (resp.ok) {
        banner.clear(source);
        if (resp.status === 204) return null;
        const type = resp.headers.get('content-type') ?? '';
        return type.includes('json') ? await resp.json() : await resp.text();
      }
      const details = await readProblem(resp);
      if (resp.status === 401) {
        banner.clear(source);
        unauthorizedHandler(details);
        throw new ApiError(401, details);
      }
      if (!RETRYABLE_STATUS.has(resp.status) || attempt >= maxRetries) {
        banner.clear(source);
        throw new ApiError(resp.status, details);
      }
      problem = `The server is unavailable (${details?.detail ?? resp.status}).`;
    } catch (error) {
      if (error instanceof ApiError) throw error;
      if (isAbort(error) && signal?.aborted) { banner.clear(source); throw error; }
      const what = error?.name === 'TimeoutError' ? 'timed out' : 'could not reach the server';
      if (attempt >= maxRetries) {
        if (!quiet) {
          banner.show(source, `${method} ${path} ${what}. Check your connection and try again.`,
            { actions: [{ label: 'Dismiss', run: () => banner.clear(source) }] });
        }
        throw new NetworkError(`${method} ${path} ${what}`);
      }
      problem = `Network problem: ${method} ${path} ${what}.`;
    }
    await waitWithBanner(source, problem, backoffMs(attempt), attempt, signal);
  }
}

/**
 * Upload a form with progress (fetch cannot report upload progress; XMLHttpRequest can).
 * Not retried: a POST that creates a server must not run twice behind the user's back.
 */
export function upload(path, form, { onProgress, signal, timeout = 120000 } = {}) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', path);
    xhr.timeout = timeout;
    xhr.responseType = 'text';
    for (const [k, v] of Object.entries(headers())) xhr.setRequestHeader(k, v);
    xhr.upload.addEventListener('progress', (e) => {
      if (e.lengthComputable) onProgress?.(e.loaded, e.total);
    });
    xhr.addEventListener('load', () => {
      let body = null;
      try { body = xhr.responseText ? JSON.parse(xhr.responseText) : null; } catch { body = { detail: xhr.responseText }; }
      if (xhr.status >= 200 && xhr.status < 300) {
        resolve(body);
        return;
      }
      if (xhr.status === 401) unauthorizedHandler(body);
      reject(new ApiError(xhr.status, body));
    });
    xhr.addEventListener('error', () => reject(new NetworkError('the upload could not reach the server')));
    xhr.addEventListener('timeout', () => reject(new NetworkError('the upload timed out')));
    xhr.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError')));
    signal?.addEventListener('abort', () => xhr.abort());
    xhr.send(form);
  });
}

/**
 * Read a live stream until `signal` aborts, reconnecting with backoff when it drops.
 * `parse(text)` receives decoded chunks and returns complete items, each passed to `onItem`.
 * `onOpen` runs on every (re)connection, so the page can re-read what it may have missed.
 * A stream silent for longer than `idleMs` counts as dropped (keepalives arrive well before).
 * `shouldReconnect()` returning false ends it quietly when the server closes it on purpose.
 */
async function follow(path, { signal, accept, makeParser, onItem, onOpen, idleMs = 45000, label,
  shouldReconnect = () => true, onState = () => {}, quietIdle = false }) {
  const source = Symbol(path);
  for (let attempt = 0; !signal.aborted; ) {
    const inner = new AbortController();
    const abortInner = () => inner.abort();
    signal.addEventListener('abort', abortInner);
    let idle = null;
    const touch = () => {
      clearTimeout(idle);
      idle = setTimeout(() => inner.abort(new DOMException('idle', 'TimeoutError')), idleMs);
    };
    let trouble = null;
    try {
      touch();
      const resp = await fetch(path, { headers: headers({ Accept: accept }), signal: inner.signal, cache: 'no-store' });
      if (resp.status === 401) {
        unauthorizedHandler(await readProblem(resp));
        return;
      }
      if (!resp.ok) {
        const problem = await readProblem(resp);
        if (!RETRYABLE_STATUS.has(resp.status) && resp.status !== 429) {
          banner.show(source, `${label} failed: ${problem?.detail ?? resp.status}.`,
            { actions: [{ label: 'Dismiss', run: () => banner.clear(source) }] });
          onState('failed');
          return;
        }
        trouble = `${label}: the server is unavailable.`;
      } else {
        banner.clear(source);
        attempt = 0;
        onState('live');
        onOpen?.();
        const reader = resp.body.getReader();
        const decoder = new TextDecoder();
        const parse = makeParser();
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          touch();
          for (const item of parse(decoder.decode(value, { stream: true }))) onItem(item);
        }
        if (!shouldReconnect()) { onState('ended'); return; }
        trouble = `${label}: the stream ended unexpectedly.`;
      }
    } catch (error) {
      if (signal.aborted) break;
      const silent = inner.signal.reason?.name === 'TimeoutError';
      // A quiet log is normal: reconnect at once, without alarming anyone.
      if (silent && quietIdle) continue;
      trouble = silent ? `${label}: no data for too long.` : `${label}: connection lost.`;
    } finally {
      clearTimeout(idle);
      signal.removeEventListener('abort', abortInner);
    }
    if (signal.aborted) break;
    onState('retrying');
    try {
      await waitWithBanner(source, trouble, backoffMs(attempt), attempt, signal);
    } catch { break; }
    attempt += 1;
  }
  banner.clear(source);
}

function sseParser() {
  let buffer = '';
  let event = 'message';
  let data = [];
  return (chunk) => {
    buffer += chunk;
    const out = [];
    let nl;
    while ((nl = buffer.search(/\r?\n/)) >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + (buffer[nl] === '\r' ? 2 : 1));
      if (line === '') {
        if (data.length) out.push({ event, data: data.join('\n') });
        event = 'message';
        data = [];
      } else if (line.startsWith(':')) {
        // a comment: keepalive
      } else {
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'event') event = value;
        else if (field === 'data') data.push(value);
      }
    }
    return out;
  };
}

function ndjsonParser() {
  let buffer = '';
  return (chunk) => {
    buffer += chunk;
    const lines = buffer.split('\n');
    buffer = lines.pop();
    return lines.filter((l) => l.trim()).map((l) => JSON.parse(l));
  };
}

/** Server-Sent Events: `onEvent(name, parsedData)`. */
export function eventStream(path, { signal, onEvent, onOpen, label = 'Live updates', onState }) {
  return follow(path, {
    signal, accept: 'text/event-stream', makeParser: sseParser, onOpen, label, onState,
    onItem: ({ event, data }) => {
      let parsed = data;
      try { parsed = JSON.parse(data); } catch { /* not JSON: pass the text */ }
      onEvent(event, parsed);
    },
  });
}

/** Newline-delimited JSON (the log follow stream). */
export function ndjsonStream(path, { signal, onItem, onOpen, label = 'Log stream', shouldReconnect, onState }) {
  return follow(path, { signal, accept: 'application/x-ndjson', makeParser: ndjsonParser, onItem, onOpen, label,
    shouldReconnect, onState, idleMs: 120000, quietIdle: true });
}
