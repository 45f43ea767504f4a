// Shared drawing board; strokes are replayed to newcomers from an async generator.
const MAX_STROKES = 5_000;

async function* replay(strokes, batch = 100) {
  for (let i = 0; i < strokes.length; i += batch) {
    yield strokes.slice(i, i + batch);
    await Promise.resolve();
  }
}

function validStroke(data) {
  const points = data?.points;
  return Array.isArray(points) && points.length > 1 && points.length <= 512
    && points.every((p) => Number.isFinite(p?.x) && Number.isFinite(p?.y));
}

export default {
  maxPlayers: 20,

  onCreate(room) {
    room.state = { strokes: [], colors: new Map() };
  },

  async onJoin(room, player) {
    room.state.colors.set(player.id, `hsl(${Math.floor(Math.random() * 360)} 70% 50%)`);
    for await (const chunk of replay(room.state.strokes)) {
      room.send(player.id, 'strokes', chunk);
    }
  },

  onMessage(room, player, type, data) {
    if (type === 'clear') {
      room.state.strokes.length = 0;
      room.broadcast('clear', { by: player.id });
      return;
    }
    if (type !== 'stroke' || !validStroke(data)) throw new Error('send a stroke of points');
    const stroke = { by: player.id, color: room.state.colors.get(player.id), points: data.points };
    room.state.strokes.push(stroke);
    if (room.state.strokes.length > MAX_STROKES) room.state.strokes.shift();
    room.broadcast('strokes', [stroke]);
  },

  onLeave(room, player) {
    room.state.colors.delete(player.id);
  },
};
