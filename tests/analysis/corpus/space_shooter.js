// Space shooter: accessors, static async factory, error causes and exponentiation.
class Ship {
  static #registry = new Map();
  #shield = 100;

  static async spawn(id) {
    const ship = new Ship(id);
    await null;
    Ship.#registry.set(id, ship);
    return ship;
  }

  static lookup(id) {
    return Ship.#registry.get(id);
  }

  static remove(id) {
    return Ship.#registry.delete(id);
  }

  constructor(id) {
    this.id = id;
    this.x = 400;
    this.y = 550;
    this.score = 0;
  }

  get shield() {
    return this.#shield;
  }

  set shield(value) {
    this.#shield = Math.max(0, Math.min(100, value));
  }
}

function waveSize(wave) {
  return Math.min(5 + Math.round(1.15 ** wave), 60);
}

module.exports = {
  maxPlayers: 4,
  tickRate: 30,

  onCreate(room) {
    room.state = { wave: 1, enemies: [], bullets: [] };
    room.state.enemies = Array.from({ length: waveSize(1) }, (_, i) => ({ x: 50 + i * 60, y: 40, hp: 2 }));
  },

  async onJoin(room, player) {
    try {
      await Ship.spawn(player.id);
    } catch (err) {
      throw new Error('could not spawn a ship', { cause: err });
    }
  },

  onMessage(room, player, type, data) {
    const ship = Ship.lookup(player.id);
    if (!ship) return;
    if (type === 'move') ship.x = Math.max(0, Math.min(800, ship.x + Math.sign(data?.dx ?? 0) * 12));
    if (type === 'fire') room.state.bullets.push({ x: ship.x, y: ship.y, owner: ship.id });
  },

  onTick(room) {
    const { bullets, enemies } = room.state;
    for (const b of bullets) b.y -= 14;
    for (const e of enemies) {
      const hit = bullets.find((b) => Math.abs(b.x - e.x) < 16 && Math.abs(b.y - e.y) < 16);
      if (!hit) continue;
      e.hp -= 1;
      hit.y = -100;
      if (e.hp === 0) {
        const shooter = Ship.lookup(hit.owner);
        if (shooter) shooter.score += 10 * room.state.wave;
      }
    }
    room.state.bullets = bullets.filter((b) => b.y > 0);
    room.state.enemies = enemies.filter((e) => e.hp > 0);
    if (room.state.enemies.length === 0) {
      room.state.wave += 1;
      room.state.enemies = Array.from({ length: waveSize(room.state.wave) }, (_, i) => ({ x: 30 + (i % 12) * 60, y: 40 + Math.floor(i / 12) * 40, hp: 2 }));
    }
    room.broadcast('frame', { ...room.state, ships: room.players.map((p) => Ship.lookup(p.id)).filter(Boolean) });
  },

  onLeave(room, player) {
    Ship.remove(player.id);
  },
};
