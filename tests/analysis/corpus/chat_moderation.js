// A chat room with moderation: lookbehind, unicode property escapes and match indices.
const BLOCKED = ['spam', 'scam'];
const MENTION = /(?<=^|\s)@(?<name>[\p{L}\p{N}_]{2,24})/gu;
const LINK = /\bhttps?:\/\/[^\s]+/giu;
const REPEAT = /(.)\1{9,}/u;
const WORD = /\p{Letter}+/dgu;

function moderate(text) {
  let clean = text.normalize('NFC').slice(0, 500);
  for (const word of BLOCKED) clean = clean.replaceAll(new RegExp(`\\b${word}\\b`, 'giu'), '***');
  clean = clean.replace(LINK, '[link]');
  if (REPEAT.test(clean)) clean = clean.replace(REPEAT, '$1$1$1');
  return clean;
}

function mentions(text) {
  return [...text.matchAll(MENTION)].map((m) => m.groups.name);
}

function firstWordSpan(text) {
  WORD.lastIndex = 0;
  const match = WORD.exec(text);
  return match?.indices?.[0] ?? null;
}

module.exports = {
  maxPlayers: 64,

  onCreate(room) {
    room.state = { history: [], muted: new Set() };
  },

  onJoin(room, player) {
    room.send(player.id, 'history', room.state.history.slice(-50));
  },

  onMessage(room, player, type, data) {
    if (type !== 'say') throw new Error('say something with {"type": "say", "data": {"text": "..."}}');
    if (room.state.muted.has(player.id)) throw new Error('you are muted');
    const text = moderate(String(data?.text ?? ''));
    if (!text.trim()) return;
    const entry = { from: player.id, text, at: Date.now(), mentions: mentions(text), first: firstWordSpan(text) };
    room.state.history.push(entry);
    if (room.state.history.length > 500) room.state.history.splice(0, 100);
    room.broadcast('said', entry);
  },

  onLeave(room, player) {
    room.state.muted.delete(player.id);
  },
};
