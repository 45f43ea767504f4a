// Mafia (werewolf-like) phases as a state machine keyed by symbols.
const Phase = Object.freeze({
  LOBBY: Symbol('lobby'),
  NIGHT: Symbol('night'),
  DAY: Symbol('day'),
  OVER: Symbol('over'),
});

const ROLES = ['mafia', 'detective', 'doctor', 'villager', 'villager', 'villager'];

function tally(votes) {
  const counts = new Map();
  for (const target of Object.values(votes)) counts.set(target, (counts.get(target) ?? 0) + 1);
  let best = null;
  for (const [target, count] of counts) if (best === null || count > counts.get(best)) best = target;
  return best;
}

module.exports = {
  maxPlayers: 6,

  onCreate(room) {
    room.state = { phase: Phase.LOBBY, roles: {}, alive: new Set(), votes: {}, saved: null };
  },

  onJoin(room, player) {
    if (room.state.phase !== Phase.LOBBY) throw new Error('the game has started');
    room.state.alive.add(player.id);
  },

  onMessage(room, player, type, data) {
    const state = room.state;
    switch (state.phase) {
      case Phase.LOBBY:
        if (type !== 'start') break;
        room.players.forEach((p, i) => { state.roles[p.id] = ROLES[i % ROLES.length]; });
        for (const p of room.players) room.send(p.id, 'role', { role: state.roles[p.id] });
        state.phase = Phase.NIGHT;
        break;
      case Phase.NIGHT:
        if (type === 'kill' && state.roles[player.id] === 'mafia') state.votes[player.id] = data?.target;
        if (type === 'save' && state.roles[player.id] === 'doctor') state.saved = data?.target;
        if (Object.keys(state.votes).length > 0) {
          const victim = tally(state.votes);
          if (victim !== state.saved) state.alive.delete(victim);
          state.votes = {};
          state.phase = Phase.DAY;
        }
        break;
      case Phase.DAY:
        if (type !== 'vote' || !state.alive.has(player.id)) break;
        state.votes[player.id] = data?.target;
        if (Object.keys(state.votes).length >= state.alive.size) {
          state.alive.delete(tally(state.votes));
          state.votes = {};
          const mafia = [...state.alive].filter((id) => state.roles[id] === 'mafia').length;
          state.phase = mafia === 0 || mafia * 2 >= state.alive.size ? Phase.OVER : Phase.NIGHT;
        }
        break;
      default:
        throw new Error('the game is over');
    }
    room.broadcast('phase', { phase: state.phase.description, alive: [...state.alive] });
  },

  onLeave(room, player) {
    room.state.alive.delete(player.id);
  },
};
