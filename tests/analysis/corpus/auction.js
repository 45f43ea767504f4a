// Sealed-bid auction with exact money: amounts are BigInt cents, shown with Intl.
const money = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD' });
const CENTS = 100n;

function parseCents(text) {
  const match = /^(?<whole>\d{1,9})(?:\.(?<frac>\d{1,2}))?$/.exec(String(text));
  if (!match) throw new Error('bid like 12.50');
  const { whole, frac = '0' } = match.groups;
  return BigInt(whole) * CENTS + BigInt(frac.padEnd(2, '0'));
}

const show = (cents) => money.format(Number(cents) / 100);

module.exports = {
  maxPlayers: 30,

  onCreate(room) {
    room.state = { lot: 'Vintage arcade cabinet', bids: new Map(), closed: false, reserve: 150n * CENTS };
    room.setMetadata({ lot: room.state.lot });
  },

  onJoin(room, player) {
    room.send(player.id, 'lot', { lot: room.state.lot, reserve: show(room.state.reserve) });
  },

  onMessage(room, player, type, data) {
    if (room.state.closed) throw new Error('the auction is closed');
    if (type === 'bid') {
      const cents = parseCents(data?.amount);
      if (cents <= 0n) throw new Error('bid more than nothing');
      room.state.bids.set(player.id, cents);
      room.send(player.id, 'bid-accepted', { amount: show(cents) });
      return;
    }
    if (type !== 'close') return;
    room.state.closed = true;
    const ranked = [...room.state.bids].sort(([, a], [, b]) => (a < b ? 1 : a > b ? -1 : 0));
    const [winner, second] = ranked;
    const price = second ? second[1] + 1n : room.state.reserve;
    room.broadcast('result', winner && winner[1] >= room.state.reserve
      ? { winner: winner[0], price: show(price) }
      : { winner: null });
  },
};
