// Timed voting rounds: Promise.race between all votes and a deadline, async hooks throughout.
const VOTE_MS = 20_000;

function deadline(ms, signal) {
  return new Promise((resolve) => {
    const handle = setTimeout(() => resolve('timeout'), ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(handle);
      resolve('aborted');
    });
  });
}

function votesIn(state, expected) {
  return new Promise((resolve) => {
    state.onVote = () => {
      if (state.votes.size >= expected) resolve('all-voted');
    };
  });
}

module.exports = {
  maxPlayers: 12,

  async onCreate(room) {
    room.state = { votes: new Map(), onVote: null, round: 0, controller: null };
  },

  async onJoin(room, player) {
    room.send(player.id, 'round', { round: room.state.round });
  },

  async onMessage(room, player, type, data) {
    const state = room.state;
    if (type === 'vote') {
      state.votes.set(player.id, String(data?.target ?? ''));
      state.onVote?.();
      return;
    }
    if (type !== 'start-round') return;
    state.round += 1;
    state.votes.clear();
    state.controller = new AbortController();
    room.broadcast('round', { round: state.round, ms: VOTE_MS });
    const outcome = await Promise.race([
      votesIn(state, room.players.length),
      deadline(VOTE_MS, state.controller.signal),
    ]);
    state.controller.abort();
    const counts = {};
    for (const target of state.votes.values()) counts[target] = (counts[target] ?? 0) + 1;
    room.broadcast('result', { outcome, counts });
  },

  async onLeave(room, player) {
    room.state.votes.delete(player.id);
  },

  onDispose(room) {
    room.state.controller?.abort();
  },
};
