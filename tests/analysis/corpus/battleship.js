// Battleship for two: place fleets, then take turns firing.
const SIZE = 10;
const FLEET = [5, 4, 3, 3, 2];

const emptyBoard = () => Array.from({ length: SIZE }, () => Array(SIZE).fill(null));

function place(board, ships) {
  const placed = [];
  for (const [index, ship] of ships.entries()) {
    const { x, y, vertical = false } = ship;
    const length = FLEET[index];
    if (length === undefined) throw new Error('too many ships');
    const cells = Array.from({ length }, (_, i) => (vertical ? [x, y + i] : [x + i, y]));
    if (cells.some(([cx, cy]) => cx < 0 || cy < 0 || cx >= SIZE || cy >= SIZE || board[cy][cx] !== null)) {
      throw new Error(`ship ${index} does not fit`);
    }
    for (const [cx, cy] of cells) board[cy][cx] = index;
    placed.push({ length, hits: 0 });
  }
  return placed;
}

module.exports = {
  maxPlayers: 2,

  onCreate(room) {
    room.state = { players: {}, order: [], turn: 0, winner: null };
  },

  onJoin(room, player) {
    room.state.players[player.id] = { board: emptyBoard(), ships: [], shots: [] };
    room.state.order.push(player.id);
  },

  onMessage(room, player, type, data) {
    const me = room.state.players[player.id];
    if (type === 'place') {
      me.ships = place(me.board, data?.ships ?? []);
      return;
    }
    if (type !== 'fire') throw new Error('place your fleet, then fire');
    if (room.state.order.at(room.state.turn % 2) !== player.id) throw new Error('not your turn');
    const enemyId = room.state.order.find((id) => id !== player.id);
    const enemy = room.state.players[enemyId];
    const { x, y } = data ?? {};
    const cell = enemy?.board[y]?.[x];
    if (cell === undefined) throw new Error('fire inside the board');
    const hit = cell !== null;
    if (hit) enemy.ships[cell].hits += 1;
    me.shots.push({ x, y, hit });
    const sunk = hit && enemy.ships[cell].hits === enemy.ships[cell].length;
    if (enemy.ships.length && enemy.ships.every((s) => s.hits === s.length)) room.state.winner = player.id;
    room.state.turn += 1;
    room.broadcast('shot', { by: player.id, x, y, hit, sunk, winner: room.state.winner });
    const last = me.shots.findLast((s) => s.hit);
    room.send(player.id, 'last-hit', last ?? null);
  },

  onLeave(room, player) {
    room.state.order = room.state.order.filter((id) => id !== player.id);
  },
};
