// The client guide's sample game (docs/clients.md): one shared counter, kept in synced state, and
// reconnection on. Frames from a client:
//   {"type": "inc", "data": {"by": 1}}   add to the counter (everyone sees `count` change)
//   {"type": "echo", "data": any}        answered to the sender as "echo"
// The state every client gets: {count, players: {<id>: {name, joins}}}; `joins` counts a player's
// reconnections too, so a client can see that it came back as the same player.
module.exports = {
  maxPlayers: 8,
  stateSync: true, // $state on join, then $patch every 50 ms when something changed
  reconnectSeconds: 15, // a dropped player keeps its seat and id this long

  onCreate(room) {
    room.state = { count: 0, players: {} };
  },

  onJoin(room, player) {
    room.state.players[player.id] = { name: player.name, joins: 1 };
    room.send(player, 'hello', { count: room.state.count });
  },

  onMessage(room, player, type, data) {
    if (type === 'inc') room.state.count += Math.max(1, Math.min(100, Number(data?.by) || 1));
    else if (type === 'echo') room.send(player, 'echo', data);
  },

  onReconnect(room, player) {
    room.state.players[player.id].joins += 1;
  },

  onLeave(room, player) {
    delete room.state.players[player.id];
  },
};
