// Trivia with named exports; answers are matched with unicode-aware regular expressions.
const QUESTIONS = [
  { q: 'Capital of France?', a: ['paris'] },
  { q: 'Largest planet?', a: ['jupiter'] },
  { q: 'Author of "Faust"?', a: ['goethe', 'johann wolfgang von goethe'] },
  { q: 'Chemical symbol for gold?', a: ['au'] },
];

// v flag: set difference keeps letters that are not ASCII digits.
const LETTERS = /[\p{L}--[0-9]]+/gv;
// d flag: match indices let us highlight the scored word.
const SCORED = /(?<word>\p{L}{3,})/du;

export const maxPlayers = 12;
export const tickRate = 0;

function normalize(text) {
  return (String(text).toLowerCase().match(LETTERS) ?? []).join(' ');
}

export function onCreate(room) {
  room.state = { round: 0, scores: {}, answered: new Set() };
}

export function onJoin(room, player) {
  room.state.scores[player.id] ??= 0;
  room.send(player.id, 'question', { round: room.state.round, text: QUESTIONS[room.state.round].q });
}

export function onMessage(room, player, type, data) {
  if (type !== 'answer') throw new Error('send {"type": "answer", "data": {"text": "..."}}');
  const { round, answered } = room.state;
  if (answered.has(player.id)) return;
  const guess = normalize(data?.text ?? '');
  const correct = QUESTIONS[round].a.includes(guess);
  answered.add(player.id);
  if (correct) {
    room.state.scores[player.id] += 1;
    const match = SCORED.exec(guess);
    room.broadcast('correct', { player: player.id, span: match?.indices?.groups?.word ?? null });
    room.state.round = (round + 1) % QUESTIONS.length;
    room.state.answered = new Set();
    room.broadcast('question', { round: room.state.round, text: QUESTIONS[room.state.round].q });
  }
}

export function onLeave(room, player) {
  delete room.state.scores[player.id];
}
