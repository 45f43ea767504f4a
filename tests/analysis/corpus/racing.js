// Top-down racing: laps around checkpoints, best lap times, physics with numeric separators.
const TRACK = {
  checkpoints: [
    { x: 100, y: 100 }, { x: 900, y: 120 }, { x: 950, y: 700 }, { x: 120, y: 680 },
  ],
  radius: 60,
  laps: 3,
};
const MAX_SPEED = 400;
const FRICTION = 0.985;
const MS_PER_S = 1_000;

function distance(a, b) {
  return Math.hypot(a.x - b.x, a.y - b.y);
}

function parseInput(data) {
  try {
    const { throttle = 0, steer = 0 } = data ?? {};
    return { throttle: Math.max(-1, Math.min(1, +throttle)), steer: Math.max(-1, Math.min(1, +steer)) };
  } catch {
    return { throttle: 0, steer: 0 };
  }
}

module.exports = {
  maxPlayers: 6,
  tickRate: 20,

  onCreate(room) {
    room.state = { cars: {}, started: Date.now(), results: [] };
  },

  onJoin(room, player) {
    const start = TRACK.checkpoints[0];
    room.state.cars[player.id] = {
      x: start.x, y: start.y, angle: 0, speed: 0, next: 1, lap: 0, lapStart: Date.now(), best: null,
      input: { throttle: 0, steer: 0 },
    };
  },

  onMessage(room, player, type, data) {
    if (type !== 'input') return;
    const car = room.state.cars[player.id];
    if (car) car.input = parseInput(data);
  },

  onLeave(room, player) {
    delete room.state.cars[player.id];
  },

  onTick(room, dtMs) {
    const dt = dtMs / MS_PER_S;
    for (const [id, car] of Object.entries(room.state.cars)) {
      car.angle += car.input.steer * 2.5 * dt * (car.speed / MAX_SPEED);
      car.speed = Math.min(MAX_SPEED, (car.speed + car.input.throttle * 600 * dt) * FRICTION);
      car.x += Math.cos(car.angle) * car.speed * dt;
      car.y += Math.sin(car.angle) * car.speed * dt;
      const target = TRACK.checkpoints[car.next];
      if (distance(car, target) < TRACK.radius) {
        car.next = (car.next + 1) % TRACK.checkpoints.length;
        if (car.next === 1) {
          const lapTime = Date.now() - car.lapStart;
          car.best = Math.min(car.best ?? Infinity, lapTime);
          car.lap += 1;
          car.lapStart = Date.now();
          if (car.lap >= TRACK.laps) room.state.results.push({ id, time: Date.now() - room.state.started });
        }
      }
    }
    room.broadcast('cars', room.state.cars);
  },
};
