// Pong as an ES module: two paddles, one ball, first to eleven.
import { randomInt } from 'node:crypto';

const settings = await Promise.resolve({ width: 640, height: 480, paddle: 80, speed: 320 });
const WINNING_SCORE = 11;

function serve(state, towards = randomInt(2) === 0 ? -1 : 1) {
  state.ball = {
    x: settings.width / 2,
    y: settings.height / 2,
    vx: towards * settings.speed,
    vy: (Math.random() - 0.5) * settings.speed,
  };
}

function clamp(value, low, high) {
  return Math.min(high, Math.max(low, value));
}

export default {
  maxPlayers: 2,
  tickRate: 30,

  onCreate(room) {
    room.state = { paddles: {}, score: {}, ball: null, winner: null };
    serve(room.state);
  },

  onJoin(room, player) {
    const side = Object.keys(room.state.paddles).length === 0 ? 'left' : 'right';
    room.state.paddles[player.id] = { side, y: settings.height / 2, input: 0 };
    room.state.score[player.id] ??= 0;
    if (Object.keys(room.state.paddles).length === 2) room.lock();
  },

  onMessage(room, player, type, data) {
    const paddle = room.state.paddles[player.id];
    if (type === 'move' && paddle) paddle.input = clamp(Number(data?.dir ?? 0), -1, 1);
  },

  onLeave(room, player) {
    delete room.state.paddles[player.id];
    room.unlock();
  },

  onTick(room, dtMs) {
    const dt = dtMs / 1_000;
    const { ball, paddles } = room.state;
    if (room.state.winner || !ball) return;
    for (const paddle of Object.values(paddles)) {
      paddle.y = clamp(paddle.y + paddle.input * settings.speed * dt, settings.paddle / 2,
        settings.height - settings.paddle / 2);
    }
    ball.x += ball.vx * dt;
    ball.y += ball.vy * dt;
    if (ball.y < 0 || ball.y > settings.height) ball.vy *= -1;
    for (const [id, paddle] of Object.entries(paddles)) {
      const edge = paddle.side === 'left' ? 10 : settings.width - 10;
      const near = Math.abs(ball.x - edge) < 8 && Math.abs(ball.y - paddle.y) < settings.paddle / 2;
      if (near) ball.vx = -ball.vx * 1.05;
      if ((paddle.side === 'left' && ball.x < 0) || (paddle.side === 'right' && ball.x > settings.width)) {
        const other = Object.keys(paddles).find((key) => key !== id);
        if (other) room.state.score[other] += 1;
        if ((room.state.score[other] ?? 0) >= WINNING_SCORE) room.state.winner = other;
        serve(room.state, paddle.side === 'left' ? 1 : -1);
      }
    }
    room.broadcast('state', room.state);
  },
};
