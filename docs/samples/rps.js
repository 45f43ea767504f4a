// Rock-paper-scissors for two players, round after round, with a 10-second clock per round.
// Frames from a client:
//   {"type": "throw", "data": {"hand": "rock"}}      "rock", "paper" or "scissors"; once a round
// Frames the room sends:
//   "round"   to both, when a round starts: {round, seconds}
//   "thrown"  to the other player once you have chosen (not what you chose): {by}
//   "result"  to both: {round, hands: {<id>: hand}, winner: <id> | null, score: {<id>: wins}}
//   "waiting" to a lone player: {for: "opponent"}

const HANDS = ['rock', 'paper', 'scissors'];
const BEATS = { rock: 'scissors', paper: 'rock', scissors: 'paper' };
const ROUND_MS = 10_000;

function startRound(room) {
  const state = room.state;
  state.round += 1;
  state.hands = {};
  state.leftMs = ROUND_MS;
  state.playing = true;
  room.broadcast('round', { round: state.round, seconds: ROUND_MS / 1000 });
  room.setMetadata({ status: 'playing', round: state.round });
}

function finishRound(room) {
  const state = room.state;
  const [a, b] = room.players.map((p) => p.id);
  const ha = state.hands[a];
  const hb = state.hands[b];
  let winner = null;
  if (ha && (!hb || BEATS[ha] === hb)) winner = a; // a player who did not throw in time loses
  else if (hb && (!ha || BEATS[hb] === ha)) winner = b;
  if (winner) state.score[winner] += 1;
  state.playing = false;
  room.broadcast('result', { round: state.round, hands: state.hands, winner, score: state.score });
  startRound(room);
}

module.exports = {
  maxPlayers: 2,
  tickRate: 2, // two ticks a second are plenty for a clock that counts seconds

  onCreate(room) {
    room.state = { round: 0, hands: {}, score: {}, leftMs: 0, playing: false };
    room.setMetadata({ status: 'waiting', round: 0 });
  },

  onJoin(room, player) {
    // Throwing refuses the player: they get an error frame, then the socket closes with 4003.
    if (room.players.some((p) => p.id !== player.id && p.name === player.name)) {
      throw new Error(`the name "${player.name}" is taken in this room`);
    }
    room.state.score[player.id] = 0;
    if (room.players.length < 2) {
      room.send(player, 'waiting', { for: 'opponent' });
      return;
    }
    room.lock(); // the room list stops offering this room; the runtime refuses new players
    startRound(room);
  },

  onMessage(room, player, type, data) {
    const state = room.state;
    if (type !== 'throw') throw new Error(`unknown message type "${type}" (send "throw")`);
    if (!state.playing) throw new Error('no round is being played: wait for an opponent');
    const hand = data?.hand;
    if (!HANDS.includes(hand)) throw new Error('hand must be "rock", "paper" or "scissors"');
    if (state.hands[player.id]) throw new Error('you already threw this round');
    state.hands[player.id] = hand;
    room.broadcast('thrown', { by: player.id }, { except: player });
    if (Object.keys(state.hands).length === 2) finishRound(room);
  },

  onTick(room, dtMs) {
    const state = room.state;
    if (!state.playing) return;
    state.leftMs -= dtMs;
    if (state.leftMs <= 0) finishRound(room);
  },

  onLeave(room, player) {
    const state = room.state;
    delete state.score[player.id];
    state.playing = false;
    for (const other of room.players) room.send(other, 'waiting', { for: 'opponent' });
    room.unlock();
    room.setMetadata({ status: 'waiting' });
  },

  onDispose(room) {
    room.log(`closing after ${room.state.round} rounds`, room.state.score);
  },
};
