// Hostile: an endless synchronous loop in onMessage. The runtime's watchdog must notice the
// blocked event loop and exit with code 4; until then the container's CPU quota holds it.
module.exports = {
  maxPlayers: 4,
  onCreate(room) {
    room.state = { spins: 0 };
  },
  onMessage(room, player, type) {
    if (type === 'spin') {
      room.log('spinning forever');
      for (;;) { room.state.spins += 1; }
    }
    room.send(player.id, 'pong', { type });
  },
};
