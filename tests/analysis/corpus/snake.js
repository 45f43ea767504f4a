// Snake for up to eight players on a wrapping grid. Each player steers with
// {"type": "turn", "data": {"dir": "up" | "down" | "left" | "right"}}.
'use strict';

const GRID = { width: 48, height: 32 };
const DIRS = Object.freeze({
  up: { x: 0, y: -1 },
  down: { x: 0, y: 1 },
  left: { x: -1, y: 0 },
  right: { x: 1, y: 0 },
});

class Snake {
  #body = [];
  #dir = DIRS.right;
  #pending = null;
  alive = true;
  score = 0;

  constructor(id, start) {
    this.id = id;
    this.#body = [start, { x: start.x - 1, y: start.y }, { x: start.x - 2, y: start.y }];
  }

  get head() {
    return this.#body.at(0);
  }

  get cells() {
    return [...this.#body];
  }

  turn(name) {
    const next = DIRS[name];
    if (!next) throw new Error(`unknown direction ${name}`);
    // A snake cannot reverse into itself.
    if (next.x === -this.#dir.x && next.y === -this.#dir.y) return;
    this.#pending = next;
  }

  step(grow) {
    this.#dir = this.#pending ?? this.#dir;
    this.#pending = null;
    const head = this.head;
    const x = (head.x + this.#dir.x + GRID.width) % GRID.width;
    const y = (head.y + this.#dir.y + GRID.height) % GRID.height;
    this.#body.unshift({ x, y });
    if (!grow) this.#body.pop();
  }

  occupies(cell, skipHead = false) {
    return this.#body.some((c, i) => (!skipHead || i > 0) && c.x === cell.x && c.y === cell.y);
  }
}

function freeCell(state) {
  for (let tries = 0; tries < 1_000; tries++) {
    const cell = {
      x: Math.floor(Math.random() * GRID.width),
      y: Math.floor(Math.random() * GRID.height),
    };
    const taken = [...state.snakes.values()].some((s) => s.occupies(cell));
    if (!taken) return cell;
  }
  return { x: 0, y: 0 };
}

module.exports = {
  maxPlayers: 8,
  tickRate: 10,

  onCreate(room) {
    room.state = { snakes: new Map(), food: null, tick: 0 };
    room.state.food = freeCell(room.state);
  },

  onJoin(room, player) {
    room.state.snakes.set(player.id, new Snake(player.id, freeCell(room.state)));
  },

  onMessage(room, player, type, data) {
    if (type !== 'turn') throw new Error('only "turn" messages are understood');
    room.state.snakes.get(player.id)?.turn(data?.dir);
  },

  onLeave(room, player) {
    room.state.snakes.delete(player.id);
  },

  onTick(room) {
    const { snakes } = room.state;
    room.state.tick += 1;
    for (const snake of snakes.values()) {
      if (!snake.alive) continue;
      const eats = snake.head.x === room.state.food?.x && snake.head.y === room.state.food?.y;
      snake.step(eats);
      if (eats) {
        snake.score += 1;
        room.state.food = freeCell(room.state);
      }
    }
    for (const snake of snakes.values()) {
      const crashed = [...snakes.values()].some((other) => other.occupies(snake.head, other === snake));
      if (crashed) snake.alive = false;
    }
    room.broadcast('frame', {
      tick: room.state.tick,
      food: room.state.food,
      snakes: [...snakes.values()].map((s) => ({ id: s.id, cells: s.cells, alive: s.alive, score: s.score })),
    });
  },
};
