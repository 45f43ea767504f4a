// Texas hold'em dealing and betting rounds; hand ranking is left to the clients.
const { randomInt } = require('node:crypto');

const SUITS = ['♠', '♥', '♦', '♣'];
const RANKS = ['2', '3', '4', '5', '6', '7', '8', '9', 'T', 'J', 'Q', 'K', 'A'];

function* cards() {
  for (const suit of SUITS) {
    for (const rank of RANKS) yield `${rank}${suit}`;
  }
}

class Deck {
  #cards;

  constructor() {
    this.#cards = [...cards()];
    // Fisher-Yates with a cryptographic source.
    for (let i = this.#cards.length - 1; i > 0; i--) {
      const j = randomInt(i + 1);
      [this.#cards[i], this.#cards[j]] = [this.#cards[j], this.#cards[i]];
    }
  }

  draw(count = 1) {
    return this.#cards.splice(0, count);
  }

  *[Symbol.iterator]() {
    yield* this.#cards;
  }
}

const STAGES = ['preflop', 'flop', 'turn', 'river', 'showdown'];

module.exports = {
  maxPlayers: 9,

  onCreate(room) {
    room.state = { deck: null, stage: null, board: [], pot: 0, bets: {}, hands: {} };
  },

  onJoin(room, player) {
    room.state.bets[player.id] = 0;
  },

  onMessage(room, player, type, data) {
    const state = room.state;
    if (type === 'deal') {
      state.deck = new Deck();
      state.stage = STAGES[0];
      state.board = [];
      state.pot = 0;
      for (const p of room.players) {
        state.hands[p.id] = state.deck.draw(2);
        room.send(p.id, 'hand', { cards: state.hands[p.id] });
      }
    } else if (type === 'bet') {
      const amount = Math.trunc(Number(data?.amount));
      if (!Number.isSafeInteger(amount) || amount <= 0) throw new Error('bet a positive whole amount');
      state.bets[player.id] = (state.bets[player.id] ?? 0) + amount;
      state.pot += amount;
    } else if (type === 'next') {
      const index = STAGES.indexOf(state.stage);
      state.stage = STAGES[Math.min(index + 1, STAGES.length - 1)];
      const draw = { flop: 3, turn: 1, river: 1 }[state.stage] ?? 0;
      state.board.push(...(state.deck?.draw(draw) ?? []));
    } else {
      throw new Error(`unknown message ${type}`);
    }
    room.broadcast('table', { stage: state.stage, board: state.board, pot: state.pot });
  },

  onLeave(room, player) {
    delete state_of(room).hands[player.id];
  },
};

function state_of(room) {
  return room.state;
}
