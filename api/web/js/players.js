// Names of players. A player who gave no name is known to the game by its id (the matchmaker's
// 32 hex digits, `p-…` without a seat token), and the runtime uses that id as the name: the console
// shows a short, friendly name made from the id instead ("Brave Otter"), the same on every page
// and in every browser, so the id never reaches a list of people.

const ADJECTIVES = [
  'Amber', 'Bold', 'Brave', 'Breezy', 'Bright', 'Calm', 'Clever', 'Cosmic', 'Crimson', 'Curious',
  'Daring', 'Dapper', 'Eager', 'Electric', 'Fancy', 'Fearless', 'Fierce', 'Gentle', 'Giddy', 'Golden',
  'Happy', 'Hidden', 'Humble', 'Jolly', 'Keen', 'Kind', 'Lively', 'Lucky', 'Mellow', 'Mighty',
  'Misty', 'Nimble', 'Noble', 'Olive', 'Patient', 'Plucky', 'Polite', 'Proud', 'Quick', 'Quiet',
  'Rapid', 'Rosy', 'Rusty', 'Shiny', 'Silent', 'Silver', 'Sleepy', 'Sly', 'Snowy', 'Sparkly',
  'Speedy', 'Steady', 'Sunny', 'Swift', 'Tidy', 'Tiny', 'Trusty', 'Velvet', 'Vivid', 'Wandering',
  'Witty', 'Wise', 'Zany', 'Zesty',
];
const ANIMALS = [
  'Alpaca', 'Badger', 'Beaver', 'Bison', 'Camel', 'Cheetah', 'Cobra', 'Condor', 'Coyote', 'Crane',
  'Dingo', 'Dolphin', 'Eagle', 'Falcon', 'Ferret', 'Finch', 'Fox', 'Gazelle', 'Gecko', 'Gibbon',
  'Heron', 'Hedgehog', 'Ibis', 'Iguana', 'Jackal', 'Jaguar', 'Koala', 'Lemur', 'Leopard', 'Llama',
  'Lynx', 'Magpie', 'Marmot', 'Meerkat', 'Mole', 'Moose', 'Newt', 'Ocelot', 'Octopus', 'Orca',
  'Otter', 'Owl', 'Panda', 'Panther', 'Parrot', 'Pelican', 'Penguin', 'Puffin', 'Quail', 'Rabbit',
  'Raccoon', 'Raven', 'Salmon', 'Seal', 'Sparrow', 'Squid', 'Stork', 'Tapir', 'Tiger', 'Toucan',
  'Turtle', 'Walrus', 'Wombat', 'Yak',
];

/** 32-bit FNV-1a of a string: small, stable across browsers, spreads similar ids apart. */
function fnv1a(text) {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i += 1) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}

/** The friendly name of a player id: an adjective and an animal, always the same for the same id. */
export function friendlyName(id) {
  const hash = fnv1a(String(id ?? ''));
  return `${ADJECTIVES[hash % ADJECTIVES.length]} ${ANIMALS[Math.floor(hash / ADJECTIVES.length) % ANIMALS.length]}`;
}

/** What to call a player: the name they chose, or the friendly name of their id when they chose none. */
export function playerName(id, name) {
  const chosen = typeof name === 'string' ? name.trim() : '';
  return chosen && chosen !== id ? chosen : friendlyName(id);
}
