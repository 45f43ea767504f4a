// A chess clock in nanoseconds with BigInt arithmetic; the moves themselves are relayed.
const NS_PER_MS = 1_000_000n;
const INITIAL = 5n * 60n * 1_000n * NS_PER_MS; // five minutes
const INCREMENT = 2n * 1_000n * NS_PER_MS;

const now = () => BigInt(Date.now()) * NS_PER_MS;

function remaining(clock, side) {
  const spent = clock.running === side ? now() - clock.since : 0n;
  const left = clock.left[side] - spent;
  return left > 0n ? left : 0n;
}

function toMs(ns) {
  return Number(ns / NS_PER_MS);
}

module.exports = {
  maxPlayers: 2,

  onCreate(room) {
    room.state = {
      sides: {},
      moves: [],
      clock: { left: { white: INITIAL, black: INITIAL }, running: null, since: 0n },
      flagged: null,
    };
  },

  onJoin(room, player) {
    const taken = new Set(Object.values(room.state.sides));
    const side = taken.has('white') ? 'black' : 'white';
    if (taken.size >= 2) throw new Error('the game is full');
    room.state.sides[player.id] = side;
    room.send(player.id, 'side', { side });
  },

  onMessage(room, player, type, data) {
    const side = room.state.sides[player.id];
    const { clock } = room.state;
    switch (type) {
      case 'move': {
        if (clock.running && clock.running !== side) throw new Error('not your turn');
        if (!/^[a-h][1-8][a-h][1-8][qrbn]?$/.test(data?.uci ?? '')) throw new Error('bad move');
        if (clock.running) {
          clock.left[side] = remaining(clock, side) + INCREMENT;
        }
        clock.running = side === 'white' ? 'black' : 'white';
        clock.since = now();
        room.state.moves.push(data.uci);
        break;
      }
      case 'flag': {
        const other = side === 'white' ? 'black' : 'white';
        if (remaining(clock, other) === 0n) room.state.flagged = other;
        break;
      }
      default:
        throw new Error(`unknown message ${type}`);
    }
    room.broadcast('clock', {
      white: toMs(remaining(clock, 'white')),
      black: toMs(remaining(clock, 'black')),
      moves: room.state.moves.length,
      flagged: room.state.flagged,
    });
  },

  onLeave(room, player) {
    delete room.state.sides[player.id];
  },
};
