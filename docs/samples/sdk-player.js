// A browser player with the client SDK (@gsf/client), for the counter sample (counter.js): join
// or create a room, send frames, follow the synced state, and let the SDK reconnect after a
// dropped connection. An ES module; `@gsf/client` resolves through the import map of
// sdk-player.html (or a bundler). tests/web/test_sdk_browser.py plays it in Chromium.
import { Client, NoRoomAvailableError, RateLimitedError, ReconnectExpiredError } from '@gsf/client';

/** Join `game` through the matchmaker at `matchmakerUrl`; `show(text)` hears what happens. */
export async function play(matchmakerUrl, { game = 'counter', name, show = console.log } = {}) {
  const client = new Client(matchmakerUrl); // reconnection is on by default
  let room;
  try {
    room = await client.joinOrCreate(game, { name });
  } catch (error) {
    // Every failure is a typed error: branch on the class, never on the message.
    if (error instanceof NoRoomAvailableError) show('No room has a free seat and none could be made.');
    else if (error instanceof RateLimitedError) show(`Too many joins: try again in ${error.retryAfter ?? 1} s.`);
    throw error;
  }
  show(`joined ${room.id} as ${room.name}`);
  room.onMessage('echo', (data) => show(`echo ${JSON.stringify(data)}`));
  room.listen('/count', (count) => show(`count ${count}`)); // a JSON Pointer into the synced state
  room.onDrop((code) => show(`connection lost (${code}): reconnecting…`));
  room.onReconnect(() => show(`back in ${room.id} as ${room.name}`)); // the same seat, the same playerId
  room.onLeave((code, error) => {
    if (error instanceof ReconnectExpiredError) show('could not get back in time: the seat is gone');
    else show(`left (${code})`);
  });
  room.onError((error) => show(`error ${error.name}: ${error.message}`));
  return room;
}
