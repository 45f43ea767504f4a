// Hex territory control with axial coordinates, destructuring and rest/spread everywhere.
const DIRECTIONS = [[1, 0], [1, -1], [0, -1], [-1, 0], [-1, 1], [0, 1]];
const RADIUS = 5;

const key = ({ q, r }) => `${q}:${r}`;
const fromKey = (k) => {
  const [q, r] = k.split(':').map(Number);
  return { q, r };
};

function* hexes(radius) {
  for (let q = -radius; q <= radius; q++) {
    for (let r = Math.max(-radius, -q - radius); r <= Math.min(radius, -q + radius); r++) yield { q, r };
  }
}

function neighbours({ q, r }) {
  return DIRECTIONS.map(([dq, dr]) => ({ q: q + dq, r: r + dr }));
}

module.exports = {
  maxPlayers: 3,

  onCreate(room) {
    room.state = { owners: Object.fromEntries([...hexes(RADIUS)].map((h) => [key(h), null])), turn: 0, order: [] };
  },

  onJoin(room, { id, ...rest }) {
    room.state.order = [...room.state.order, id];
    room.send(id, 'welcome', { ...rest, radius: RADIUS });
  },

  onMessage(room, player, type, { q, r, ...extra } = {}) {
    if (type !== 'claim') throw new Error('claim a hex with {q, r}');
    const k = key({ q, r });
    const { owners, order, turn } = room.state;
    if (order[turn % order.length] !== player.id) throw new Error('not your turn');
    if (!(k in owners) || owners[k] !== null) throw new Error('that hex is not free');
    const adjacent = neighbours({ q, r }).some((n) => owners[key(n)] === player.id);
    const first = !Object.values(owners).includes(player.id);
    if (!adjacent && !first) throw new Error('claim next to your territory');
    owners[k] = player.id;
    room.state.turn = turn + 1;
    const counts = Object.values(owners).reduce((acc, owner) => (owner ? { ...acc, [owner]: (acc[owner] ?? 0) + 1 } : acc), {});
    room.broadcast('claimed', { ...fromKey(k), by: player.id, counts, note: Object.keys(extra).length ? 'ignored extra fields' : undefined });
  },

  onLeave(room, player) {
    room.state.order = room.state.order.filter((id) => id !== player.id);
  },
};
