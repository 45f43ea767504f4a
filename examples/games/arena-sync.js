// Arena with state sync: the same game as arena.js, but instead of broadcasting every player's
// position every tick, the room keeps what clients draw in room.state and the runtime sends each
// client `$state` once, then `$patch` (RFC 6902) with what changed, at most every 50 ms.
// Frames from a client:
//   {"type": "input", "data": {"dx": -1..1, "dy": -1..1}}   steering (normalized by the room)
// Frames the room sends: "arena" (size and colour, to a newcomer), "coin" when someone scores;
// positions and scores arrive through the synced state: {tick, coin, players: {id: {x, y, score, color}}}.

const WIDTH = 800;
const HEIGHT = 600;
const SPEED = 240; // units per second
const RADIUS = 12;
const COIN_RADIUS = 8;
const COLORS = ['#e6194b', '#3cb44b', '#4363d8', '#f58231', '#911eb4', '#46f0f0', '#f032e6', '#bcf60c'];

function randomSpot(margin) {
  return {
    x: Math.round(margin + Math.random() * (WIDTH - 2 * margin)),
    y: Math.round(margin + Math.random() * (HEIGHT - 2 * margin)),
  };
}

function clamp(value, low, high) {
  return Math.min(high, Math.max(low, value));
}

function axis(value) {
  return typeof value === 'number' && Number.isFinite(value) ? clamp(value, -1, 1) : 0;
}

function round1(value) {
  return Math.round(value * 10) / 10;
}

module.exports = {
  maxPlayers: 16,
  tickRate: 20,
  stateSync: { patchRateMs: 50 },

  onCreate(room) {
    room.state = { tick: 0, coin: randomSpot(40), players: {} };
  },

  onJoin(room, player) {
    const used = new Set(Object.values(room.state.players).map((p) => p.color));
    const color = COLORS.find((c) => !used.has(c)) ?? COLORS[room.state.tick % COLORS.length];
    const spot = randomSpot(RADIUS);
    // Exact positions and inputs stay out of the synced state (player.data): clients get 0.1 units.
    Object.assign(player.data, { x: spot.x, y: spot.y, dx: 0, dy: 0 });
    room.state.players[player.id] = { x: spot.x, y: spot.y, score: 0, color };
    room.send(player.id, 'arena', { width: WIDTH, height: HEIGHT, radius: RADIUS, color });
  },

  onMessage(room, player, type, data) {
    if (type !== 'input') throw new Error(`unknown message type "${type}" (use "input")`);
    let dx = axis(data?.dx);
    let dy = axis(data?.dy);
    const length = Math.hypot(dx, dy);
    if (length > 1) { dx /= length; dy /= length; }
    player.data.dx = dx;
    player.data.dy = dy;
  },

  onTick(room, dtMs) {
    const state = room.state;
    const dt = Math.min(dtMs, 250) / 1000; // a stalled loop must not teleport anyone
    state.tick += 1;
    for (const player of room.players) {
      const me = player.data;
      const shown = state.players[player.id];
      me.x = clamp(me.x + me.dx * SPEED * dt, RADIUS, WIDTH - RADIUS);
      me.y = clamp(me.y + me.dy * SPEED * dt, RADIUS, HEIGHT - RADIUS);
      shown.x = round1(me.x);
      shown.y = round1(me.y);
      if (Math.hypot(me.x - state.coin.x, me.y - state.coin.y) < RADIUS + COIN_RADIUS) {
        shown.score += 1;
        state.coin = randomSpot(40);
        room.broadcast('coin', { by: player.id, score: shown.score });
      }
    }
  },

  onLeave(room, player) {
    delete room.state.players[player.id];
  },
};
