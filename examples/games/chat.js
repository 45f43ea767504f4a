// Chat room: everyone sees every message. Frames from a client:
//   {"type": "chat", "data": {"text": "hello"}}      say something (1..500 characters)
//   {"type": "nick", "data": {"name": "Ada"}}        change the name shown to others
// Frames the room sends: "history" (to a newcomer), "joined", "left", "chat", "nick".

const HISTORY = 50;
const MAX_TEXT = 500;

function cleanText(value, max) {
  if (typeof value !== 'string') return '';
  return value.replace(/[\u0000-\u001f\u007f]/g, ' ').trim().slice(0, max);
}

function roster(room) {
  return room.players.map((p) => ({ id: p.id, name: p.data.name ?? p.name }));
}

module.exports = {
  maxPlayers: 32,

  onCreate(room) {
    room.state = { history: [], sent: 0 };
    room.setMetadata({ mode: 'chat', players: 0 });
  },

  onJoin(room, player) {
    player.data.name = cleanText(player.name, 32) || player.id;
    room.send(player.id, 'history', { messages: room.state.history, players: roster(room) });
    room.broadcast('joined', { id: player.id, name: player.data.name }, { except: player.id });
    room.setMetadata({ players: room.players.length });
  },

  onMessage(room, player, type, data) {
    switch (type) {
      case 'chat': {
        const text = cleanText(data?.text, MAX_TEXT);
        if (!text) throw new Error('chat needs {"text": "..."} with 1..500 characters');
        const message = { from: player.id, name: player.data.name, text, at: Date.now() };
        room.state.history.push(message);
        if (room.state.history.length > HISTORY) room.state.history.shift();
        room.state.sent += 1;
        room.broadcast('chat', message);
        break;
      }
      case 'nick': {
        const name = cleanText(data?.name, 32);
        if (!name) throw new Error('nick needs {"name": "..."} with 1..32 characters');
        const before = player.data.name;
        player.data.name = name;
        room.broadcast('nick', { id: player.id, before, name });
        break;
      }
      default:
        throw new Error(`unknown message type "${type}" (use "chat" or "nick")`);
    }
  },

  onLeave(room, player) {
    room.broadcast('left', { id: player.id, name: player.data.name });
    room.setMetadata({ players: room.players.length });
  },

  onDispose(room) {
    room.log(`chat closed after ${room.state.sent} messages`);
  },
};
