'use strict';
// The runtime's HTTP side: /health, and for the agent (bearer key) /status, /rooms/{id}, the durable
// rooms' /snapshots and /rooms/restore; failures as application/problem+json.

const crypto = require('node:crypto');
const http = require('node:http');
const { performance } = require('node:perf_hooks');

const express = require('express');

const { migrateRequest, restoreRequest } = require('./durable');
const { rt } = require('./runtime-state');
const players = require('./players');
const router = require('./room-router');

const PROBLEM_BASE = 'https://gsf.dev/problems/';

function problemBody(status, slug, detail) {
  return JSON.stringify({ type: PROBLEM_BASE + slug, title: http.STATUS_CODES[status], status, detail });
}

function sendProblem(res, status, slug, detail) {
  res.status(status).type('application/problem+json').send(problemBody(status, slug, detail));
}

function sha256(text) {
  return crypto.createHash('sha256').update(text, 'utf8').digest();
}

function agentAuthorized(req) {
  if (!rt.cfg.agentKey) return false;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(req.get('authorization') || '');
  return match !== null && crypto.timingSafeEqual(sha256(match[1]), sha256(rt.cfg.agentKey));
}

function roomEntry(rec) {
  const entry = {
    room_id: rec.id, players: players.seated(rec), player_ids: [...rec.conns.keys(), ...rec.dropped.keys()],
    dropped: Array.from(rec.dropped.keys()), max_players: rt.maxPlayers,
    locked: rec.locked, metadata: rec.metadata, options: rec.options, created_at: rec.createdAt,
    status: rec.status,
  };
  if (rec.reason !== undefined) entry.reason = rec.reason;
  if (rec.durable) {
    entry.durable = true;
    entry.snapshot_seq = rec.snapSeq;
    if (rec.snapError) entry.snapshot_error = rec.snapError;
  }
  return entry;
}

/** `body` with the state spliced in (it is already JSON: no parsing it back). */
function withState(body, answer) {
  body.state_truncated = answer.truncated;
  if (answer.error) body.state_error = answer.error;
  return `${JSON.stringify(body).slice(0, -1)},"state":${answer.text ?? 'null'}}`;
}

async function statusBody() {
  let seatedCount = 0;
  const playerIds = [];
  for (const rec of rt.liveRooms) {
    seatedCount += players.seated(rec);
    playerIds.push(...rec.conns.keys(), ...rec.dropped.keys());
  }
  const body = {
    server_id: rt.cfg.serverId,
    instance: rt.instance,
    ready: rt.ready,
    players: seatedCount,
    player_ids: playerIds,
    max_players: rt.maxPlayers,
    locked: rt.firstRoom?.locked ?? false,
    metadata: rt.firstRoom?.metadata ?? {},
    tick_rate: rt.tickRate,
    uptime_ms: Math.round(performance.now() - rt.startedAt),
    ticks: rt.pool ? rt.pool.ticks : (rt.threadLink?.marker[4] ?? 0),
    messages_in: rt.stats.messagesIn,
    messages_out: rt.stats.messagesOut,
    messages_dropped: rt.stats.messagesDropped,
    max_rooms: rt.maxRooms,
    durable: rt.durableModule,
    snapshot_cursor: rt.book.cursor,
    rooms: Array.from(rt.rooms.values(), roomEntry),
  };
  const answer = rt.firstRoom ? await router.queryState(rt.firstRoom) : { text: null, truncated: false, error: null };
  return withState(body, answer);
}

function requireAgent(req, res) {
  if (agentAuthorized(req)) return true;
  res.set('WWW-Authenticate', 'Bearer');
  sendProblem(res, 401, 'unauthorized', `GET ${req.path} needs Authorization: Bearer <agent key>`);
  return false;
}

/** The express app of the runtime's routes. */
function createApp() {
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');

  app.get('/health', (req, res) => {
    res.status(rt.ready && !rt.shuttingDown ? 200 : 503).json({ ok: rt.ready && !rt.shuttingDown });
  });


  app.get('/status', (req, res, next) => {
    if (!requireAgent(req, res)) return;
    statusBody().then((body) => res.type('application/json').send(body), next);
  });

  app.get('/rooms/:roomId', (req, res, next) => {
    if (!requireAgent(req, res)) return;
    const rec = rt.rooms.get(req.params.roomId);
    if (!rec) {
      sendProblem(res, 404, 'room-not-found', `no room ${req.params.roomId} on this server`);
      return;
    }
    router.queryState(rec).then((answer) => res.type('application/json').send(withState(roomEntry(rec), answer)), next);
  });

  // Durable rooms: the agent pulls the snapshots, and pushes them into a restarted server.
  app.get('/snapshots', (req, res) => {
    if (!requireAgent(req, res)) return;
    const after = Number(req.query.after ?? 0);
    if (!Number.isInteger(after) || after < 0) {
      sendProblem(res, 422, 'validation-error', 'after must be an integer >= 0');
      return;
    }
    res.type('application/json').send(rt.book.page(after));
  });

  app.post('/rooms/restore', (req, res, next) => {
    if (requireAgent(req, res)) next();
  }, express.json({ limit: '64mb' }), (req, res, next) => {
    const list = restoreRequest(req.body);
    const migrate = migrateRequest(req.body);
    if (typeof list === 'string' || typeof migrate === 'string') {
      sendProblem(res, 422, 'validation-error', typeof list === 'string' ? list : migrate);
      return;
    }
    if (!rt.ready || rt.shuttingDown) {
      sendProblem(res, 503, 'not-ready', 'the server is not ready');
      return;
    }
    // A rolling update (`migrate`): the rooms come from another game version; onMigrate runs first.
    const { fromVersion } = migrate;
    const from = fromVersion !== null ? 'migrate' : typeof req.body.from === 'string' ? req.body.from.slice(0, 64) : 'crash';
    Promise.all(list.map((snap) => router.restoreRoom(snap, from, fromVersion)))
      .then((results) => res.json({ restored: results.filter((r) => r.ok), skipped: results.filter((r) => !r.ok) }), next);
  });

  app.use((req, res) => sendProblem(res, 404, 'not-found', `no route ${req.method} ${req.path}`));
  // eslint-disable-next-line no-unused-vars
  app.use((err, req, res, next) => {
    rt.log.error('http error', err);
    sendProblem(res, 500, 'internal', 'internal error');
  });
  return app;
}

module.exports = { createApp, problemBody };
