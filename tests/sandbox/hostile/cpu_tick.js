// Hostile: burns every CPU cycle it can in onTick (60 ticks/s, each spinning 40 ms), never long
// enough for the watchdog. The container's CPU quota must keep it from starving its neighbours.
module.exports = {
  tickRate: 60,
  onCreate(room) {
    room.state = { spins: 0 };
  },
  onTick(room) {
    const until = Date.now() + 40;
    while (Date.now() < until) room.state.spins += 1;
  },
};
