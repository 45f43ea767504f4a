#!/usr/bin/env node
// Sokoban relay race; levels are template literals, the file keeps its shebang line.
'use strict';

const LEVELS = [
  `
#######
#.@ # #
#$* $ #
#   $ #
# ..  #
#  *  #
#######`,
  `
  #####
###   #
#.@$  #
### $.#
#.##$ #
# # . ##
#$ *$$.#
#   .  #
########`,
];

function parse(level) {
  const rows = level.trim().split('\n');
  const walls = new Set();
  const goals = new Set();
  const boxes = new Set();
  let player = null;
  rows.forEach((row, y) => {
    [...row].forEach((ch, x) => {
      const k = `${x},${y}`;
      if (ch === '#') walls.add(k);
      if ('.*+'.includes(ch)) goals.add(k);
      if ('$*'.includes(ch)) boxes.add(k);
      if ('@+'.includes(ch)) player = { x, y };
    });
  });
  return { walls, goals, boxes, player };
}

module.exports = {
  maxPlayers: 2,

  onCreate(room) {
    room.state = { level: 0, ...parse(LEVELS[0]), moves: 0 };
  },

  onMessage(room, player, type, data) {
    if (type !== 'push') return;
    const s = room.state;
    const dx = Math.sign(data?.dx ?? 0);
    const dy = dx === 0 ? Math.sign(data?.dy ?? 0) : 0;
    const next = `${s.player.x + dx},${s.player.y + dy}`;
    const beyond = `${s.player.x + 2 * dx},${s.player.y + 2 * dy}`;
    if (s.walls.has(next)) return;
    if (s.boxes.has(next)) {
      if (s.walls.has(beyond) || s.boxes.has(beyond)) return;
      s.boxes.delete(next);
      s.boxes.add(beyond);
    }
    s.player = { x: s.player.x + dx, y: s.player.y + dy };
    s.moves += 1;
    const solved = [...s.boxes].every((b) => s.goals.has(b));
    if (solved && s.level + 1 < LEVELS.length) Object.assign(s, { level: s.level + 1, ...parse(LEVELS[s.level + 1]) });
    room.broadcast('board', { player: s.player, boxes: [...s.boxes], moves: s.moves, solved });
  },

  onJoin(room, player) {
    room.send(player.id, 'level', LEVELS[room.state.level]);
  },
};
