// Quiz rounds that settle every player's answer with Promise.allSettled and timeouts.
const ROUND_MS = 15_000;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function* rounds(questions) {
  let index = 0;
  for (const question of questions) {
    yield { index: index++, ...question };
  }
}

function grade(answer, expected) {
  return typeof answer === 'number' && Math.abs(answer - expected) < 1e-9;
}

module.exports = {
  maxPlayers: 10,

  async onCreate(room) {
    room.state = { answers: new Map(), history: [], current: null };
    await sleep(0);
  },

  onJoin(room, player) {
    room.send(player.id, 'history', room.state.history);
  },

  async onMessage(room, player, type, data) {
    if (type === 'answer') {
      room.state.answers.set(player.id, data?.value);
      return;
    }
    if (type !== 'start') throw new Error('start a quiz or answer a question');
    const questions = [{ text: '6 × 7', value: 42 }, { text: '2 ** 10', value: 1024 }];
    for await (const question of rounds(questions)) {
      room.state.current = question;
      room.state.answers.clear();
      room.broadcast('question', { index: question.index, text: question.text, ms: ROUND_MS });
      await sleep(Math.min(ROUND_MS, data?.fastMs ?? ROUND_MS));
      const graded = await Promise.allSettled(room.players.map(async (p) => ({
        id: p.id,
        correct: grade(room.state.answers.get(p.id), question.value),
      })));
      const results = graded.filter((r) => r.status === 'fulfilled').map((r) => r.value);
      room.state.history.push({ index: question.index, results });
      room.broadcast('results', results);
    }
  },
};
