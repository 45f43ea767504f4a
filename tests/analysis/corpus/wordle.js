// Cooperative word guessing: everyone guesses the same word, colours come back per letter.
const WORDS = ['crane', 'slate', 'pride', 'ghost', 'lemon', 'vivid', 'quartz'.slice(0, 5)];
const VALID = /^\p{Ll}{5}$/u;

function score(guess, answer) {
  const result = Array(5).fill('grey');
  const counts = {};
  for (const ch of answer) counts[ch] = (counts[ch] ?? 0) + 1;
  [...guess].forEach((ch, i) => {
    if (answer[i] === ch) {
      result[i] = 'green';
      counts[ch] -= 1;
    }
  });
  [...guess].forEach((ch, i) => {
    if (result[i] !== 'green' && counts[ch] > 0) {
      result[i] = 'yellow';
      counts[ch] -= 1;
    }
  });
  return result;
}

module.exports = {
  maxPlayers: 4,

  onCreate(room) {
    room.state = { answer: WORDS[Math.floor(Math.random() * WORDS.length)], guesses: [], done: false };
  },

  onJoin(room, player) {
    room.send(player.id, 'board', { guesses: room.state.guesses, done: room.state.done });
  },

  onMessage(room, player, type, data) {
    if (type !== 'guess' || room.state.done) return;
    const guess = String(data?.word ?? '').trim().toLowerCase().replaceAll(/\s+/g, '');
    if (!VALID.test(guess)) throw new Error('guess a five-letter word');
    const colours = score(guess, room.state.answer);
    room.state.guesses.push({ by: player.id, guess, colours });
    room.state.done = colours.every((c) => c === 'green') || room.state.guesses.length >= 6;
    room.broadcast('board', {
      guesses: room.state.guesses,
      done: room.state.done,
      answer: room.state.done ? room.state.answer : undefined,
    });
  },
};
