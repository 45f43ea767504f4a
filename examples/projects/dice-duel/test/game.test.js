// Tests of the built dice duel: `npm test` builds it first (esbuild, .gsf/game.js); the platform's
// tests hand in their own build through DICE_DUEL_BUILD.
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');

const { createRoom } = require('../../../../gameserver/runtime/testing.js');

const built = require(process.env.DICE_DUEL_BUILD || path.join(__dirname, '..', '.gsf', 'game.js'));
const game = built.default ?? built;

async function duel() {
  const room = await createRoom(game);
  const a = await room.join('a');
  const b = await room.join('b');
  return { room, a, b };
}

test('two players seat, the duel starts with the first to join', async () => {
  const { a, b } = await duel();
  assert.deepEqual(a.last('seat'), { position: 0 });
  assert.deepEqual(b.last('seat'), { position: 1 });
  const state = b.last('state');
  assert.equal(state.status, 'playing');
  assert.equal(state.turn, 'a');
});

test('rolls come from the seeded RNG: the same room rolls the same dice', async () => {
  const first = await duel();
  const second = await duel();
  await first.a.send('roll');
  await second.a.send('roll');
  const dice = first.b.last('rolled').dice;
  assert.equal(dice.length, 5);
  assert.ok(dice.every((d) => Number.isInteger(d) && d >= 1 && d <= 6));
  assert.deepEqual(second.b.last('rolled').dice, dice);
});

test('three rounds each, then the higher total wins', async () => {
  const { a, b } = await duel();
  for (let round = 0; round < 3; round++) {
    await a.send('claim', { dice: [6, 6, 6, 6, 5] });
    await b.send('claim', { dice: [1, 2, 3, 4, 5] });
  }
  const state = a.last('rolled').state;
  assert.equal(state.status, 'over');
  assert.equal(state.winner, 'a');
  assert.deepEqual(state.totals, { a: 3 * (29 + 20), b: 3 * 15 });
});

test('a bad die is refused and the turn stays', async () => {
  const { a } = await duel();
  await a.send('claim', { dice: [1, 2, 3, 4, 9] });
  assert.match(a.last('error').message, /a die shows 1 to 6, got 9/);
  await a.send('roll');
  assert.equal(a.last('rolled').player, 'a');
});
