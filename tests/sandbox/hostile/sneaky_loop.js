// Hostile, and not obviously so: the loop has an exit condition that never becomes true in
// practice, so the static analysis lets it through. The runtime's watchdog is what catches it.
module.exports = {
  maxPlayers: 4,
  onCreate(room) {
    room.state = { spins: 0 };
  },
  onMessage(room, player, type) {
    if (type === 'spin') {
      while (room.state.spins >= 0) room.state.spins += 1;
      return;
    }
    room.send(player.id, 'pong', { type });
  },
};
