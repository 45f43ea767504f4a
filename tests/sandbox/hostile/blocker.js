// Blocks the event loop on request: `block` with {ms} busy-waits that long (a long but finite
// synchronous job), `forever` never returns. Used to check the runtime's watchdog both ways.
module.exports = {
  onCreate(room) {
    room.state = { blocks: 0 };
  },
  onMessage(room, player, type, data) {
    if (type === 'forever') for (;;) { /* never yields */ }
    if (type === 'block') {
      const until = Date.now() + data.ms;
      while (Date.now() < until) { /* busy */ }
      room.state.blocks += 1;
    }
    room.send(player.id, 'done', { type });
  },
};
