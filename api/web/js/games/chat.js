// Chat room (examples/games/chat.js): the history, who is here, say something, change your name.
// Frames: `history` {messages, players}, `joined`, `left`, `chat`, `nick`. A player without a name
// (the room uses the id as the name) shows under a friendly name made from the id.

import { playerName } from '../players.js';
import { clock, h } from '../ui.js';

export function mount(stage, { send, me }) {
  const people = new Map(); // id -> the name shown
  const log = h('ol', { class: 'chat-log', role: 'log', 'aria-live': 'polite', 'aria-label': 'Messages', dataset: { testid: 'chat-log' } });
  const roster = h('ul', { class: 'chat-roster', 'aria-label': 'People here' });
  const text = h('input', { type: 'text', id: 'chat-text', maxlength: 500, autocomplete: 'off', required: true });
  const nick = h('input', { type: 'text', id: 'chat-nick', maxlength: 32, autocomplete: 'nickname' });
  const say = h('form', { class: 'chat-say', method: 'post', 'aria-label': 'Send a message' },
    h('label', { for: 'chat-text' }, 'Message'), text, h('button', { type: 'submit', class: 'button button-primary' }, 'Send'));
  const rename = h('form', { class: 'chat-say', method: 'post', 'aria-label': 'Change your name' },
    h('label', { for: 'chat-nick' }, 'Your name'), nick, h('button', { type: 'submit', class: 'button' }, 'Change'));
  stage.append(h('section', { class: 'game chat', 'aria-label': 'Chat room' },
    h('div', { class: 'chat-main' }, log, say, rename),
    h('aside', { class: 'chat-side', 'aria-label': 'People' }, h('h2', {}, 'Here now'), roster)));

  say.addEventListener('submit', (e) => {
    e.preventDefault();
    if (!text.value.trim()) return;
    send('chat', { text: text.value });
    text.value = '';
    text.focus();
  });
  rename.addEventListener('submit', (e) => {
    e.preventDefault();
    if (nick.value.trim()) send('nick', { name: nick.value.trim() });
  });

  function note(content, cls = 'chat-note') {
    log.append(h('li', { class: cls }, content));
    log.scrollTop = log.scrollHeight;
  }

  function message(m) {
    const mine = m.from === me.playerId;
    log.append(h('li', { class: mine ? 'chat-msg chat-mine' : 'chat-msg' },
      h('time', { datetime: new Date(m.at).toISOString() }, clock(new Date(m.at))), ' ',
      h('strong', {}, playerName(m.from, m.name)), ': ', h('span', { class: 'chat-text' }, m.text)));
    log.scrollTop = log.scrollHeight;
  }

  function drawRoster() {
    roster.replaceChildren(...[...people.entries()].map(([id, name]) => h('li', {}, name, id === me.playerId ? ' (you)' : '')));
  }

  return {
    onFrame(type, data) {
      if (type === 'history') {
        for (const p of data.players ?? []) people.set(p.id, playerName(p.id, p.name));
        for (const m of data.messages ?? []) message(m);
        const chosen = (data.players ?? []).find((p) => p.id === me.playerId)?.name ?? me.name;
        people.set(me.playerId, playerName(me.playerId, chosen));
        note(`You joined as ${people.get(me.playerId)}.`);
        nick.value = chosen && chosen !== me.playerId ? chosen : ''; // no name chosen yet: the box stays empty
        nick.placeholder = people.get(me.playerId);
      } else if (type === 'joined') {
        people.set(data.id, playerName(data.id, data.name));
        note(`${people.get(data.id)} joined.`);
      } else if (type === 'left') {
        people.delete(data.id);
        note(`${playerName(data.id, data.name)} left.`);
      } else if (type === 'chat') {
        message(data);
      } else if (type === 'nick') {
        people.set(data.id, playerName(data.id, data.name));
        note(`${playerName(data.id, data.before)} is now ${people.get(data.id)}.`);
      }
      drawRoster();
    },
    onClose() {
      for (const el of stage.querySelectorAll('input, button')) el.disabled = true;
    },
  };
}
