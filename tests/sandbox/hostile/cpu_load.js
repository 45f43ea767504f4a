// Hostile: spins at load time, before the runtime can open the room (3 s: under the watchdog's
// limit). The CPU quota holds it; the room opens late but opens.
const until = Date.now() + 3000;
let spins = 0;
while (Date.now() < until) spins += 1;
module.exports = {
  onCreate(room) {
    room.state = { loadSpins: spins };
  },
};
