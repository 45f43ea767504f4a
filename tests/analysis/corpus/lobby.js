// A lobby that collects players into teams and starts a countdown once everyone is ready.
class Teams {
  static NAMES;
  static #counter = 0;

  static {
    Teams.NAMES = Object.freeze(['red', 'blue', 'green', 'gold']);
  }

  static nextId() {
    Teams.#counter += 1;
    return `team-${Teams.#counter}`;
  }

  #members = new Map();

  constructor(count) {
    for (const name of Teams.NAMES.slice(0, count)) this.#members.set(name, new Set());
  }

  smallest() {
    let best = null;
    for (const [name, members] of this.#members) {
      if (best === null || members.size < this.#members.get(best).size) best = name;
    }
    return best;
  }

  add(playerId) {
    const team = this.smallest();
    this.#members.get(team).add(playerId);
    return team;
  }

  remove(playerId) {
    for (const members of this.#members.values()) members.delete(playerId);
  }

  toJSON() {
    return Object.fromEntries([...this.#members].map(([name, set]) => [name, [...set]]));
  }
}

module.exports = {
  maxPlayers: 16,
  tickRate: 1,

  onCreate(room) {
    room.state = { teams: new Teams(2), ready: new Set(), countdown: null, id: Teams.nextId() };
  },

  onJoin(room, player) {
    const team = room.state.teams.add(player.id);
    room.send(player.id, 'welcome', { team, lobby: room.state.id });
    room.broadcast('teams', room.state.teams.toJSON());
  },

  onMessage(room, player, type) {
    if (type === 'ready') room.state.ready.add(player.id);
    else if (type === 'unready') room.state.ready.delete(player.id);
    else throw new Error(`unknown message ${type}`);
    const everyone = room.players.length > 1 && room.players.every((p) => room.state.ready.has(p.id));
    room.state.countdown = everyone ? (room.state.countdown ?? 5) : null;
    room.broadcast('ready', { ready: [...room.state.ready], countdown: room.state.countdown });
  },

  onLeave(room, player) {
    room.state.teams.remove(player.id);
    room.state.ready.delete(player.id);
  },

  onTick(room) {
    if (room.state.countdown === null) return;
    room.state.countdown -= 1;
    if (room.state.countdown <= 0) {
      room.lock();
      room.broadcast('start', { teams: room.state.teams.toJSON() });
      room.state.countdown = null;
    } else {
      room.broadcast('countdown', { seconds: room.state.countdown });
    }
  },
};
