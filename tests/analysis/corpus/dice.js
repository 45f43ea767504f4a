// Yahtzee-style dice with crypto randomness, labelled loops and do-while rerolls.
const crypto = require('node:crypto');

const roll = (count) => Array.from({ length: count }, () => crypto.randomInt(1, 7));

function categories(dice) {
  const counts = dice.reduce((acc, d) => ({ ...acc, [d]: (acc[d] ?? 0) + 1 }), {});
  const values = Object.values(counts).sort((a, b) => b - a);
  const sum = dice.reduce((a, b) => a + b, 0);
  const sorted = [...new Set(dice)].sort();
  let straight = 1;
  let best = 1;
  outer: for (let i = 1; i < sorted.length; i++) {
    if (sorted[i] !== sorted[i - 1] + 1) {
      straight = 1;
      continue outer;
    }
    straight += 1;
    best = Math.max(best, straight);
  }
  return {
    chance: sum,
    fullHouse: values[0] === 3 && values[1] === 2 ? 25 : 0,
    smallStraight: best >= 4 ? 30 : 0,
    largeStraight: best >= 5 ? 40 : 0,
    yahtzee: values[0] === 5 ? 50 : 0,
  };
}

module.exports = {
  maxPlayers: 4,

  onCreate(room) {
    room.state = { dice: roll(5), rolls: 1, held: [false, false, false, false, false], scores: {} };
  },

  onJoin(room, player) {
    room.state.scores[player.id] ??= {};
  },

  onMessage(room, player, type, data) {
    const state = room.state;
    if (type === 'hold') {
      state.held = state.held.map((h, i) => (i === data?.index ? !h : h));
    } else if (type === 'roll') {
      let attempts = 0;
      do {
        state.dice = state.dice.map((d, i) => (state.held[i] ? d : roll(1)[0]));
        attempts += 1;
      } while (attempts < 1);
      state.rolls += 1;
    } else if (type === 'score') {
      const options = categories(state.dice);
      const name = data?.category;
      if (!Object.hasOwn(options, name)) throw new Error(`no category ${name}`);
      state.scores[player.id][name] = options[name];
      Object.assign(state, { dice: roll(5), rolls: 1, held: state.held.map(() => false) });
    }
    room.broadcast('dice', { dice: state.dice, rolls: state.rolls, held: state.held });
  },
};
