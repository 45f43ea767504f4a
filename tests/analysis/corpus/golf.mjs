// Mini golf as an ES module saved with a UTF-8 byte order mark (some editors on Windows do).
const HOLES = [
  { tee: [50, 300], cup: [550, 300], par: 2, walls: [] },
  { tee: [50, 50], cup: [550, 550], par: 3, walls: [[300, 0, 300, 400]] },
];
const FRICTION = 0.98;

class Ball {
  x = 0;
  y = 0;
  vx = 0;
  vy = 0;
  strokes = 0;
  #sunk = false;

  get sunk() {
    return this.#sunk;
  }

  sink() {
    this.#sunk = true;
    this.vx = this.vy = 0;
  }

  get moving() {
    return Math.hypot(this.vx, this.vy) > 0.5;
  }
}

export default {
  maxPlayers: 4,
  tickRate: 30,

  onCreate(room) {
    room.state = { hole: 0, balls: new Map() };
  },

  onJoin(room, player) {
    const ball = new Ball();
    [ball.x, ball.y] = HOLES[room.state.hole].tee;
    room.state.balls.set(player.id, ball);
  },

  onMessage(room, player, type, data) {
    const ball = room.state.balls.get(player.id);
    if (type !== 'putt' || !ball || ball.moving || ball.sunk) return;
    const power = Math.min(Math.max(Number(data?.power) || 0, 0), 1) * 25;
    const angle = Number(data?.angle) || 0;
    ball.vx = Math.cos(angle) * power;
    ball.vy = Math.sin(angle) * power;
    ball.strokes += 1;
  },

  onTick(room) {
    const hole = HOLES[room.state.hole];
    for (const ball of room.state.balls.values()) {
      if (ball.sunk) continue;
      ball.x += ball.vx;
      ball.y += ball.vy;
      ball.vx *= FRICTION;
      ball.vy *= FRICTION;
      if (Math.hypot(ball.x - hole.cup[0], ball.y - hole.cup[1]) < 10 && !ball.moving) ball.sink();
    }
    const everyoneIn = [...room.state.balls.values()].every((b) => b.sunk);
    if (everyoneIn && room.state.hole + 1 < HOLES.length) room.state.hole += 1;
    room.broadcast('course', { hole: room.state.hole, balls: Object.fromEntries(room.state.balls) });
  },

  onLeave(room, player) {
    room.state.balls.delete(player.id);
  },
};
