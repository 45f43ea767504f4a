// Co-op tower defense. Creeps are tracked with WeakRef so finished waves can be collected.
const PATH = [[0, 5], [5, 5], [5, 1], [10, 1], [10, 8], [15, 8]];
const TOWERS = { arrow: { cost: 50, range: 3, damage: 4 }, cannon: { cost: 120, range: 2, damage: 12 } };

const registry = new FinalizationRegistry((wave) => {
  // Nothing to release; the registry only proves waves do not leak.
  void wave;
});

function pointAt(progress) {
  const segment = Math.min(Math.floor(progress), PATH.length - 2);
  const t = progress - segment;
  const [[x1, y1], [x2, y2]] = [PATH[segment], PATH[segment + 1]];
  return { x: x1 + (x2 - x1) * t, y: y1 + (y2 - y1) * t };
}

module.exports = {
  maxPlayers: 4,
  tickRate: 10,

  onCreate(room) {
    room.state = { gold: 200, lives: 20, towers: [], creeps: [], wave: 0, lastWave: null };
  },

  onJoin(room, player) {
    room.send(player.id, 'path', PATH);
  },

  onMessage(room, player, type, data) {
    if (type === 'build') {
      const spec = TOWERS[data?.kind];
      if (!spec || room.state.gold < spec.cost) throw new Error('cannot build that here');
      room.state.gold -= spec.cost;
      room.state.towers.push({ ...spec, x: data.x, y: data.y, by: player.id });
    } else if (type === 'wave') {
      room.state.wave += 1;
      const creeps = Array.from({ length: 5 + room.state.wave * 2 }, (_, i) => ({ hp: 10 + room.state.wave * 5, progress: -i * 0.5 }));
      room.state.creeps.push(...creeps);
      registry.register(creeps, room.state.wave);
      room.state.lastWave = new WeakRef(creeps);
    }
  },

  onTick(room) {
    const state = room.state;
    for (const creep of state.creeps) creep.progress += 0.05;
    for (const tower of state.towers) {
      const target = state.creeps.find((c) => {
        if (c.progress < 0) return false;
        const p = pointAt(c.progress);
        return Math.hypot(p.x - tower.x, p.y - tower.y) <= tower.range;
      });
      if (target) target.hp -= tower.damage;
    }
    const escaped = state.creeps.filter((c) => c.progress >= PATH.length - 1).length;
    state.lives -= escaped;
    const killed = state.creeps.filter((c) => c.hp <= 0).length;
    state.gold += killed * 5;
    state.creeps = state.creeps.filter((c) => c.hp > 0 && c.progress < PATH.length - 1);
    room.broadcast('field', {
      creeps: state.creeps.filter((c) => c.progress >= 0).map((c) => ({ ...pointAt(c.progress), hp: c.hp })),
      gold: state.gold, lives: state.lives, waveAlive: state.lastWave?.deref() !== undefined,
    });
  },
};
