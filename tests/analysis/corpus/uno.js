// Uno with draw stacking; the hidden hands never leave the server.
const COLOURS = ['red', 'yellow', 'green', 'blue'];

function buildDeck() {
  const deck = [];
  for (const colour of COLOURS) {
    deck.push({ colour, value: '0' });
    for (const value of ['1', '2', '3', '4', '5', '6', '7', '8', '9', 'skip', 'reverse', '+2']) {
      deck.push({ colour, value }, { colour, value });
    }
  }
  for (let i = 0; i < 4; i++) deck.push({ colour: null, value: 'wild' }, { colour: null, value: '+4' });
  return deck.sort(() => Math.random() - 0.5);
}

const playable = (card, top, colour) =>
  card.colour === null || card.colour === colour || card.value === top.value;

module.exports = {
  maxPlayers: 6,

  onCreate(room) {
    const deck = buildDeck();
    const top = deck.find((c) => c.colour !== null);
    room.state = { deck: deck.filter((c) => c !== top), pile: [top], colour: top.colour, hands: {},
      order: [], turn: 0, direction: 1, stack: 0 };
  },

  onJoin(room, player) {
    const state = room.state;
    state.hands[player.id] = state.deck.splice(0, 7);
    state.order.push(player.id);
    room.send(player.id, 'hand', structuredClone(state.hands[player.id]));
  },

  onMessage(room, player, type, data) {
    const state = room.state;
    const current = state.order.at(state.turn % state.order.length);
    if (current !== player.id) throw new Error('wait for your turn');
    const hand = state.hands[player.id];
    if (type === 'play') {
      const card = hand[data?.index];
      const top = state.pile.at(-1);
      if (!card || !playable(card, top, state.colour)) throw new Error('that card cannot be played');
      hand.splice(data.index, 1);
      state.pile.push(card);
      state.colour = card.colour ?? (COLOURS.includes(data?.colour) ? data.colour : 'red');
      if (card.value === 'reverse') state.direction *= -1;
      if (card.value === '+2' || card.value === '+4') state.stack += Number(card.value.slice(1));
      const skip = card.value === 'skip' ? 2 : 1;
      state.turn = (state.turn + skip * state.direction + state.order.length * 2) % state.order.length;
    } else if (type === 'draw') {
      const count = Math.max(1, state.stack);
      hand.push(...state.deck.splice(0, count));
      state.stack = 0;
      state.turn = (state.turn + state.direction + state.order.length) % state.order.length;
    }
    const counts = Object.fromEntries(Object.entries(state.hands).map(([id, h]) => [id, h.length]));
    room.broadcast('table', { top: state.pile.at(-1), colour: state.colour, counts });
    room.send(player.id, 'hand', hand);
  },

  onLeave(room, player) {
    room.state.order = room.state.order.filter((id) => id !== player.id);
    room.state.deck.push(...(room.state.hands[player.id] ?? []));
    delete room.state.hands[player.id];
  },
};
