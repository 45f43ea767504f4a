// Node wraps CommonJS in a function, so a top-level `return` is legal; some modules use it as
// a guard. The game is a simple hot-potato passing game.
const HOLD_MS = 3_000;

if (typeof module !== 'object') return; // loaded outside CommonJS: nothing to export

module.exports = {
  maxPlayers: 10,
  tickRate: 2,

  onCreate(room) {
    room.state = { holder: null, since: 0, out: [] };
  },

  onJoin(room, player) {
    if (room.state.holder === null) {
      room.state.holder = player.id;
      room.state.since = Date.now();
    }
  },

  onMessage(room, player, type, data) {
    if (type !== 'pass' || room.state.holder !== player.id) return;
    const target = room.players.find((p) => p.id === data?.to && !room.state.out.includes(p.id));
    if (!target) throw new Error('pass to a player who is still in');
    room.state.holder = target.id;
    room.state.since = Date.now();
    room.broadcast('potato', { holder: target.id });
  },

  onTick(room) {
    if (room.state.holder && Date.now() - room.state.since > HOLD_MS) {
      room.state.out.push(room.state.holder);
      room.broadcast('burnt', { out: room.state.holder });
      room.state.holder = room.players.find((p) => !room.state.out.includes(p.id))?.id ?? null;
      room.state.since = Date.now();
    }
  },
};
