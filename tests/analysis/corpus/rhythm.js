// Rhythm game: the server schedules beats with setTimeout(fn) and scores timing windows.
const BPM = 128;
const BEAT_MS = 60_000 / BPM;
const WINDOWS = [[30, 'perfect', 300], [70, 'great', 200], [120, 'good', 100]];

const timers = new WeakMap();

function schedule(room, beat) {
  const handle = setTimeout(() => {
    room.state.beat = beat;
    room.state.beatAt = Date.now();
    room.broadcast('beat', { beat });
    if (beat < 64) schedule(room, beat + 1);
  }, BEAT_MS);
  timers.set(room, handle);
}

function judge(offset) {
  for (const [limit, label, points] of WINDOWS) {
    if (Math.abs(offset) <= limit) return { label, points };
  }
  return { label: 'miss', points: 0 };
}

module.exports = {
  maxPlayers: 4,

  onCreate(room) {
    room.state = { beat: 0, beatAt: Date.now(), scores: {}, combo: {} };
  },

  onJoin(room, player) {
    room.state.scores[player.id] = 0;
    room.state.combo[player.id] = 0;
    if (room.players.length === 1) schedule(room, 1);
  },

  onMessage(room, player, type) {
    if (type !== 'hit') return;
    const offset = Date.now() - room.state.beatAt;
    const { label, points } = judge(offset > BEAT_MS / 2 ? offset - BEAT_MS : offset);
    room.state.combo[player.id] = points ? room.state.combo[player.id] + 1 : 0;
    room.state.scores[player.id] += points * (1 + Math.floor(room.state.combo[player.id] / 10));
    room.send(player.id, 'judgement', { label, combo: room.state.combo[player.id] });
  },

  onDispose(room) {
    clearTimeout(timers.get(room));
  },
};
