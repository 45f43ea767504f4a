// Collectible cards: a registry initialised in a static block, messages built with a tagged template.
function msg(strings, ...values) {
  return strings.reduce((out, s, i) => out + s + (i < values.length ? JSON.stringify(values[i]) : ''), '');
}

class Registry {
  static cards = new Map();

  static {
    const base = [
      { id: 'ember', cost: 1, attack: 2, health: 1 },
      { id: 'golem', cost: 4, attack: 3, health: 6 },
      { id: 'sprite', cost: 2, attack: 1, health: 3, ability: 'heal' },
    ];
    for (const card of base) Registry.cards.set(card.id, Object.freeze(card));
  }

  static get(id) {
    const card = Registry.cards.get(id);
    if (!card) throw new RangeError(msg`unknown card ${id}`, { cause: { id } });
    return card;
  }
}

module.exports = {
  maxPlayers: 2,

  onCreate(room) {
    room.state = { boards: {}, mana: {}, health: {} };
  },

  onJoin(room, player) {
    room.state.boards[player.id] = [];
    room.state.mana[player.id] = 3;
    room.state.health[player.id] = 20;
  },

  onMessage(room, player, type, data) {
    if (type === 'play') {
      const card = Registry.get(data?.card);
      if (room.state.mana[player.id] < card.cost) throw new Error(msg`needs ${card.cost} mana`);
      room.state.mana[player.id] -= card.cost;
      room.state.boards[player.id].push({ ...card, hp: card.health });
    } else if (type === 'attack') {
      const enemy = Object.keys(room.state.boards).find((id) => id !== player.id);
      const damage = room.state.boards[player.id].reduce((sum, c) => sum + c.attack, 0);
      if (enemy) room.state.health[enemy] -= damage;
    } else {
      throw new TypeError(msg`unknown message ${type}`);
    }
    room.broadcast('board', room.state);
  },
};
