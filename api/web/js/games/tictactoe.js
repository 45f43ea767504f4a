// Tic-tac-toe (examples/games/tictactoe.js): a 3×3 board of buttons, the turn, the score and
// "play again". Frames: `seat` {mark}, `state` (the room state); moves are {"type": "move", "data": {"cell": n}}.

import { h } from '../ui.js';

export function mount(stage, { send }) {
  let mark = null;
  let state = null;
  const status = h('p', { class: 'ttt-status', role: 'status', 'aria-live': 'polite', dataset: { testid: 'ttt-status' } },
    'Waiting for your seat…');
  const score = h('p', { class: 'ttt-score muted' });
  const cells = Array.from({ length: 9 }, (_, i) => h('button', {
    type: 'button', class: 'ttt-cell', dataset: { cell: i }, 'aria-disabled': 'true',
    onclick: () => play(i),
    onkeydown: (e) => arrows(e, i),
  }));
  const board = h('div', { class: 'ttt-board', role: 'group', 'aria-label': 'Board: rows top to bottom, arrow keys move' }, cells);
  const again = h('button', { type: 'button', class: 'button button-primary', hidden: true, onclick: () => send('restart') },
    'Play again');
  const root = h('section', { class: 'game ttt', 'aria-label': 'Tic-tac-toe' }, status, board, score, again);
  stage.append(root);

  function playable(i) {
    return state?.status === 'playing' && state.turn === mark && state.board[i] === null;
  }

  function play(i) {
    if (playable(i)) send('move', { cell: i });
  }

  function arrows(e, i) {
    const moves = { ArrowLeft: -1, ArrowRight: 1, ArrowUp: -3, ArrowDown: 3 };
    if (!(e.key in moves)) return;
    e.preventDefault();
    const next = i + moves[e.key];
    if (next >= 0 && next < 9 && !(Math.abs(moves[e.key]) === 1 && Math.floor(next / 3) !== Math.floor(i / 3))) cells[next].focus();
  }

  function describe() {
    const you = mark ? `You are ${mark}. ` : '';
    if (!state) return `${you}Waiting for the game…`;
    const other = mark === 'X' ? 'O' : 'X';
    switch (state.status) {
      case 'waiting': return `${you}Waiting for a second player.`;
      case 'playing': return state.turn === mark ? `${you}Your turn.` : `${you}Waiting for ${other} to move.`;
      case 'won': {
        const how = state.reason === 'forfeit' ? ' (the other player left)' : '';
        return state.winner === mark ? `You won${how}!` : `${state.winner} won${how}.`;
      }
      case 'draw': return 'Draw.';
      default: return `${you}${state.status}`;
    }
  }

  function draw() {
    status.textContent = describe();
    root.dataset.status = state?.status ?? 'waiting';
    root.dataset.mark = mark ?? '';
    root.dataset.winner = state?.winner ?? '';
    const line = new Set(state?.line ?? []);
    cells.forEach((cell, i) => {
      const value = state?.board?.[i] ?? null;
      cell.textContent = value ?? '';
      cell.dataset.value = value ?? '';
      cell.classList.toggle('ttt-win', line.has(i));
      cell.setAttribute('aria-disabled', String(!playable(i)));
      cell.setAttribute('aria-label', `Row ${Math.floor(i / 3) + 1}, column ${(i % 3) + 1}: ${value ?? 'empty'}${line.has(i) ? ', winning line' : ''}`);
    });
    if (state?.score) score.textContent = `Score: X ${state.score.X} · O ${state.score.O} · draws ${state.score.draws}`;
    again.hidden = !(state && (state.status === 'won' || state.status === 'draw') && Object.keys(state.marks ?? {}).length === 2);
  }

  draw();
  return {
    onFrame(type, data) {
      if (type === 'seat') mark = data.mark;
      else if (type === 'state') state = data;
      else return;
      draw();
    },
    onState(synced) { // the same room state, when a variant of the game syncs it (`stateSync`)
      state = synced;
      draw();
    },
    onClose() {
      for (const cell of cells) cell.setAttribute('aria-disabled', 'true');
      again.hidden = true;
    },
  };
}
