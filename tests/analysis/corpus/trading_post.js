// A barter market: inventories as plain objects, offers matched with flatMap and Object.hasOwn.
const GOODS = ['wood', 'stone', 'wool', 'grain', 'ore'];

function emptyInventory() {
  return Object.fromEntries(GOODS.map((g) => [g, 3]));
}

function canPay(inventory, goods) {
  return Object.entries(goods).every(([good, amount]) => Object.hasOwn(inventory, good) && inventory[good] >= amount);
}

function transfer(from, to, goods) {
  for (const [good, amount] of Object.entries(goods)) {
    from[good] -= amount;
    to[good] += amount;
  }
}

module.exports = {
  maxPlayers: 6,

  onCreate(room) {
    room.state = { inventories: {}, offers: [], nextOffer: 1 };
  },

  onJoin(room, player) {
    room.state.inventories[player.id] ??= emptyInventory();
    room.send(player.id, 'inventory', room.state.inventories[player.id]);
  },

  onMessage(room, player, type, data) {
    const state = room.state;
    const mine = state.inventories[player.id];
    if (type === 'offer') {
      const give = Object.fromEntries(Object.entries(data?.give ?? {}).filter(([g]) => GOODS.includes(g)));
      const want = Object.fromEntries(Object.entries(data?.want ?? {}).filter(([g]) => GOODS.includes(g)));
      if (!canPay(mine, give)) throw new Error('you do not have those goods');
      state.offers.push({ id: state.nextOffer++, by: player.id, give, want });
    } else if (type === 'accept') {
      const offer = state.offers.find((o) => o.id === data?.id);
      if (!offer || offer.by === player.id) throw new Error('no such offer');
      const theirs = state.inventories[offer.by];
      if (!canPay(theirs, offer.give) || !canPay(mine, offer.want)) throw new Error('the trade no longer works');
      transfer(theirs, mine, offer.give);
      transfer(mine, theirs, offer.want);
      state.offers = state.offers.filter((o) => o !== offer);
    }
    const listing = state.offers.flatMap((o) => Object.entries(o.give).map(([good, n]) => ({ offer: o.id, good, n })));
    room.broadcast('market', { offers: state.offers, listing });
  },

  onLeave(room, player) {
    room.state.offers = room.state.offers.filter((o) => o.by !== player.id);
  },
};
