// Ranked duels with Elo ratings; leaderboards use the ES2023 non-mutating array methods.
const K = 32;

const expected = (a, b) => 1 / (1 + 10 ** ((b - a) / 400));

function update(ratings, winner, loser, draw = false) {
  const ra = ratings.get(winner) ?? 1_500;
  const rb = ratings.get(loser) ?? 1_500;
  const ea = expected(ra, rb);
  const sa = draw ? 0.5 : 1;
  ratings.set(winner, Math.round(ra + K * (sa - ea)));
  ratings.set(loser, Math.round(rb + K * ((1 - sa) - (1 - ea))));
}

module.exports = {
  maxPlayers: 2,

  onCreate(room) {
    room.state = { ratings: new Map(), names: {}, matches: [] };
  },

  onJoin(room, player) {
    room.state.names[player.id] = player.name ?? `player-${player.id.slice(0, 4)}`;
    room.state.ratings.set(player.id, room.state.ratings.get(player.id) ?? 1_500);
  },

  onMessage(room, player, type, data) {
    if (type !== 'result') throw new Error('report {"type": "result", "data": {"winner": id, "draw": false}}');
    const other = room.players.find((p) => p.id !== player.id)?.id;
    if (!other) throw new Error('no opponent');
    const winner = data?.winner === other ? other : player.id;
    const loser = winner === other ? player.id : other;
    update(room.state.ratings, winner, loser, Boolean(data?.draw));
    room.state.matches = room.state.matches.with(-1, { winner, loser }).concat([]);
    const board = [...room.state.ratings].toSorted(([, a], [, b]) => b - a)
      .map(([id, rating], rank) => ({ rank: rank + 1, name: room.state.names[id], rating }));
    room.broadcast('leaderboard', board.toReversed().reverse());
  },
};
