'use strict';
// The Colyseus 0.17 peer of bench/statesync.py: the same arena as the platform's bench module
// (bench/statesync.py ARENA_JS; both run bench/arena_sim.js), synced by @colyseus/schema. One room
// "arena": ARENA_PLAYERS seats, ARENA_ENTITIES entities moving every simulation step at ARENA_HZ (a
// fixed step, the same seeded start and the same 0.1-unit rounding as ours), patches every
// ARENA_PATCH_MS (Colyseus's default 50).
//
//   PORT=0 ARENA_DEFLATE=0|1 node arena.js   (0: a free port; the `listening ... port=N` line says which)
//
// ARENA_DEFLATE=1 turns permessage-deflate on in the WebSocket transport (ws's defaults, as ours would).
// Its modules come from the scratch folder the bench installs into (NODE_PATH); bench/arena_sim.js by path.

const http = require('node:http');
const { Server, Room } = require('@colyseus/core');
const { WebSocketTransport } = require('@colyseus/ws-transport');
const { Schema, MapSchema, defineTypes } = require('@colyseus/schema');
const { round1, spawn, step } = require('../arena_sim.js');

const env = (name, fallback) => Number(process.env[name] || fallback);
const PLAYERS = env('ARENA_PLAYERS', 16);
const ENTITIES = env('ARENA_ENTITIES', 100);
const HZ = env('ARENA_HZ', 20);
const PATCH_MS = env('ARENA_PATCH_MS', 50);
const DEFLATE = process.env.ARENA_DEFLATE === '1';

class Entity extends Schema {}
defineTypes(Entity, { x: 'number', y: 'number' });

class ArenaState extends Schema {
  constructor() {
    super();
    this.entities = new MapSchema();
  }
}
defineTypes(ArenaState, { entities: { map: Entity } });

class ArenaRoom extends Room {
  onCreate() {
    this.maxClients = PLAYERS;
    this.patchRate = PATCH_MS;
    this.state = new ArenaState();
    this.motion = spawn(ENTITIES);
    for (const m of this.motion) {
      const e = new Entity();
      e.x = round1(m.x);
      e.y = round1(m.y);
      this.state.entities.set(m.id, e);
    }
    const dt = 1 / HZ;
    this.setSimulationInterval(() => {
      step(this.motion, dt);
      for (const m of this.motion) {
        const e = this.state.entities.get(m.id);
        e.x = round1(m.x);
        e.y = round1(m.y);
      }
    }, 1000 / HZ);
  }
}

async function main() {
  const httpServer = http.createServer();
  const transport = new WebSocketTransport({ server: httpServer, perMessageDeflate: DEFLATE });
  const gameServer = new Server({ transport, greet: false, gracefullyShutdown: true });
  gameServer.define('arena', ArenaRoom);
  await gameServer.listen(Number(process.env.PORT || 0), '127.0.0.1');
  const bound = httpServer.address().port;
  process.stdout.write(`listening host=127.0.0.1 port=${bound} pid=${process.pid} deflate=${DEFLATE ? 1 : 0}\n`);
}

main().catch((err) => {
  process.stderr.write(`colyseus arena: ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
