// A game that opts into rooms (issue #22): a server hosts up to 50 rooms of 2 seats each.
module.exports = {
  maxPlayers: 2,
  maxRooms: 50,
  onCreate(room) {
    room.state.said = [];
    room.setMetadata({ mode: room.options.mode || 'duel' });
  },
  onJoin(room, player) {
    room.broadcast('joined', { player: player.id, room: room.id });
  },
  onMessage(room, player, type, data) {
    if (type !== 'say') return;
    const text = String(data && data.text).slice(0, 100);
    room.state.said.push(text);
    room.broadcast('said', { from: player.id, room: room.id, text });
  },
};
