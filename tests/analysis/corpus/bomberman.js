// Bombs, blast radius and destructible walls, with a small class hierarchy.
class Entity {
  static #ids = 0;
  id = ++Entity.#ids;

  constructor(x, y) {
    this.x = x;
    this.y = y;
  }

  at(x, y) {
    return this.x === x && this.y === y;
  }
}

class Bomb extends Entity {
  #fuse;

  constructor(x, y, owner, fuseTicks = 30) {
    super(x, y);
    this.owner = owner;
    this.#fuse = fuseTicks;
  }

  tick() {
    this.#fuse -= 1;
    return this.#fuse <= 0;
  }

  static isBomb(value) {
    return #fuse in value;
  }
}

class Bomber extends Entity {
  #maxBombs = 1;
  range = 2;
  alive = true;

  #canPlace(bombs) {
    return bombs.filter((b) => b.owner === this.id).length < this.#maxBombs;
  }

  placeBomb(bombs) {
    if (!this.#canPlace(bombs)) return null;
    return new Bomb(this.x, this.y, this.id);
  }

  powerUp() {
    this.#maxBombs += 1;
    this.range += 1;
  }
}

function blast(state, bomb, range) {
  const cells = [[bomb.x, bomb.y]];
  for (const [dx, dy] of [[1, 0], [-1, 0], [0, 1], [0, -1]]) {
    for (let i = 1; i <= range; i++) {
      const x = bomb.x + dx * i;
      const y = bomb.y + dy * i;
      if (state.walls.has(`${x},${y}`)) break;
      cells.push([x, y]);
      if (state.crates.delete(`${x},${y}`)) break;
    }
  }
  return cells;
}

module.exports = {
  maxPlayers: 4,
  tickRate: 15,

  onCreate(room) {
    const walls = new Set();
    const crates = new Set();
    for (let x = 0; x < 13; x++) {
      for (let y = 0; y < 11; y++) {
        if (x % 2 === 1 && y % 2 === 1) walls.add(`${x},${y}`);
        else if (Math.random() < 0.3 && x + y > 2) crates.add(`${x},${y}`);
      }
    }
    room.state = { walls, crates, bombs: [], bombers: new Map() };
  },

  onJoin(room, player) {
    room.state.bombers.set(player.id, new Bomber(0, 0));
  },

  onMessage(room, player, type, data) {
    const me = room.state.bombers.get(player.id);
    if (!me?.alive) return;
    if (type === 'move') {
      const x = me.x + Math.sign(data?.dx ?? 0);
      const y = me.y + Math.sign(data?.dy ?? 0);
      if (!room.state.walls.has(`${x},${y}`) && !room.state.crates.has(`${x},${y}`)) Object.assign(me, { x, y });
    } else if (type === 'bomb') {
      const bomb = me.placeBomb(room.state.bombs);
      if (bomb && Bomb.isBomb(bomb)) room.state.bombs.push(bomb);
    }
  },

  onLeave(room, player) {
    room.state.bombers.delete(player.id);
  },

  onTick(room) {
    const exploding = room.state.bombs.filter((b) => b.tick());
    room.state.bombs = room.state.bombs.filter((b) => !exploding.includes(b));
    for (const bomb of exploding) {
      const cells = blast(room.state, bomb, 2);
      for (const bomber of room.state.bombers.values()) {
        if (cells.some(([x, y]) => bomber.at(x, y))) bomber.alive = false;
      }
      room.broadcast('explosion', { cells });
    }
  },
};
