// The SDK tests' game: a shared counter with state sync and reconnection (protocol v1), plus plain
// frames so the tests also run where state sync is off. Frames from a client:
//   {"type": "inc", "data": {"by": 1}}      add to the counter (broadcast as "count")
//   {"type": "echo", "data": any}           answered to the sender as "echo"
//   {"type": "boom"}                        throws: the sender gets an `error` frame (hook_failed)
// onJoin sends "hello" right behind `welcome`; room.options.start seeds the counter.
module.exports = {
  maxPlayers: 4,
  stateSync: true,
  reconnectSeconds: 10,

  onCreate(room) {
    room.state = { count: Number(room.options.start ?? 0), players: {}, mode: room.options.mode ?? 'plain' };
    room.setMetadata({ mode: room.state.mode });
  },

  onJoin(room, player) {
    room.state.players[player.id] = { name: player.name, joins: 1 };
    room.send(player, 'hello', { id: player.id, count: room.state.count, options: room.options });
  },

  onMessage(room, player, type, data) {
    if (type === 'inc') {
      room.state.count += Number(data?.by ?? 1);
      room.broadcast('count', { count: room.state.count, by: player.id });
    } else if (type === 'echo') {
      room.send(player, 'echo', data);
    } else if (type === 'boom') {
      throw new Error('boom on purpose');
    }
  },

  onDrop(room, player) {
    room.broadcast('dropped', { id: player.id }, { except: player.id });
  },

  onReconnect(room, player) {
    room.state.players[player.id].joins += 1;
    room.broadcast('back', { id: player.id });
  },

  onLeave(room, player) {
    delete room.state.players[player.id];
  },
};
