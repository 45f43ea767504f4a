// Tanks with a small vector class: static constructors, getters, immutable operations.
class Vec {
  static ZERO = Object.freeze(new Vec(0, 0));

  static fromAngle(angle, length = 1) {
    return new Vec(Math.cos(angle) * length, Math.sin(angle) * length);
  }

  constructor(x, y) {
    this.x = x;
    this.y = y;
  }

  get length() {
    return Math.hypot(this.x, this.y);
  }

  add(other) {
    return new Vec(this.x + other.x, this.y + other.y);
  }

  scale(k) {
    return new Vec(this.x * k, this.y * k);
  }

  toJSON() {
    return { x: Math.round(this.x), y: Math.round(this.y) };
  }
}

const ARENA = new Vec(1_200, 800);

module.exports = {
  maxPlayers: 8,
  tickRate: 20,

  onCreate(room) {
    room.state = { tanks: {}, shells: [] };
  },

  onJoin(room, player) {
    room.state.tanks[player.id] = { pos: new Vec(Math.random() * ARENA.x, Math.random() * ARENA.y), angle: 0, hp: 3, drive: 0, turn: 0 };
  },

  onMessage(room, player, type, data) {
    const tank = room.state.tanks[player.id];
    if (!tank) return;
    if (type === 'drive') {
      tank.drive = Math.sign(data?.drive ?? 0);
      tank.turn = Math.sign(data?.turn ?? 0);
    } else if (type === 'fire' && room.state.shells.filter((s) => s.owner === player.id).length < 3) {
      room.state.shells.push({ owner: player.id, pos: tank.pos, vel: Vec.fromAngle(tank.angle, 500), ttl: 40 });
    }
  },

  onLeave(room, player) {
    delete room.state.tanks[player.id];
  },

  onTick(room, dtMs) {
    const dt = dtMs / 1000;
    for (const tank of Object.values(room.state.tanks)) {
      tank.angle += tank.turn * 2 * dt;
      tank.pos = tank.pos.add(Vec.fromAngle(tank.angle, tank.drive * 150 * dt));
    }
    for (const shell of room.state.shells) {
      shell.pos = shell.pos.add(shell.vel.scale(dt));
      shell.ttl -= 1;
      for (const [id, tank] of Object.entries(room.state.tanks)) {
        if (id !== shell.owner && tank.pos.add(shell.pos.scale(-1)).length < 20) {
          tank.hp -= 1;
          shell.ttl = 0;
        }
      }
    }
    room.state.shells = room.state.shells.filter((s) => s.ttl > 0);
    room.broadcast('world', room.state);
  },
};
