// Arena: players steer dots on a 2D field and race for the coin. The room ticks 20 times a
// second, moves everyone by their input and the measured time, and broadcasts the positions.
// Frames from a client:
//   {"type": "input", "data": {"dx": -1..1, "dy": -1..1}}   steering (normalized by the room)
// Frames the room sends: "arena" (size and colour, to a newcomer), "positions" every tick,
// "coin" when someone scores.

const WIDTH = 800;
const HEIGHT = 600;
const SPEED = 240; // units per second
const RADIUS = 12;
const COIN_RADIUS = 8;
const COLORS = ['#e6194b', '#3cb44b', '#4363d8', '#f58231', '#911eb4', '#46f0f0', '#f032e6', '#bcf60c'];

function randomSpot(margin) {
  return {
    x: margin + Math.random() * (WIDTH - 2 * margin),
    y: margin + Math.random() * (HEIGHT - 2 * margin),
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

  onCreate(room) {
    room.state = { tick: 0, coin: randomSpot(40), players: {} };
    room.setMetadata({ mode: 'arena', players: 0 });
  },

  onJoin(room, player) {
    const used = new Set(Object.values(room.state.players).map((p) => p.color));
    const color = COLORS.find((c) => !used.has(c)) ?? COLORS[room.state.tick % COLORS.length];
    room.state.players[player.id] = { ...randomSpot(RADIUS), dx: 0, dy: 0, score: 0, color };
    room.send(player.id, 'arena', { width: WIDTH, height: HEIGHT, radius: RADIUS, color, coin: room.state.coin });
    room.setMetadata({ players: room.players.length });
  },

  onMessage(room, player, type, data) {
    if (type !== 'input') throw new Error(`unknown message type "${type}" (use "input")`);
    const me = room.state.players[player.id];
    let dx = axis(data?.dx);
    let dy = axis(data?.dy);
    const length = Math.hypot(dx, dy);
    if (length > 1) { dx /= length; dy /= length; }
    me.dx = dx;
    me.dy = dy;
  },

  onTick(room, dtMs) {
    const state = room.state;
    const dt = Math.min(dtMs, 250) / 1000; // a stalled loop must not teleport anyone
    state.tick += 1;
    for (const [id, p] of Object.entries(state.players)) {
      p.x = clamp(p.x + p.dx * SPEED * dt, RADIUS, WIDTH - RADIUS);
      p.y = clamp(p.y + p.dy * SPEED * dt, RADIUS, HEIGHT - RADIUS);
      if (Math.hypot(p.x - state.coin.x, p.y - state.coin.y) < RADIUS + COIN_RADIUS) {
        p.score += 1;
        state.coin = randomSpot(40);
        room.broadcast('coin', { by: id, score: p.score, coin: state.coin });
      }
    }
    if (room.players.length === 0) return;
    room.broadcast('positions', {
      tick: state.tick,
      dt: Math.round(dtMs),
      players: Object.entries(state.players).map(([id, p]) => ({
        id, x: round1(p.x), y: round1(p.y), score: p.score, color: p.color,
      })),
    });
  },

  onLeave(room, player) {
    delete room.state.players[player.id];
    room.setMetadata({ players: room.players.length });
  },
};
