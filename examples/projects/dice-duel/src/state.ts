// The room's state and how it moves on: whose turn, each player's rolls and totals.
import { DICE_PER_ROLL, ROUNDS, score, winner } from './rules.js';
import type { DiceCup } from './dice.js';

export interface DuelState {
  seed: string;
  order: string[];
  turn: string | null;
  round: number;
  rolls: Record<string, number[][]>;
  totals: Record<string, number>;
  status: 'waiting' | 'playing' | 'over';
  winner: string | null;
}

export function newDuel(seed: string): DuelState {
  return { seed, order: [], turn: null, round: 0, rolls: {}, totals: {}, status: 'waiting', winner: null };
}

export function addPlayer(state: DuelState, id: string): void {
  if (state.order.length >= 2) throw new Error('two players are already playing');
  state.order.push(id);
  state.rolls[id] = [];
  state.totals[id] = 0;
  if (state.order.length === 2) {
    state.status = 'playing';
    state.round = 1;
    state.turn = state.order[0];
  }
}

export function takeTurn(state: DuelState, id: string, dice: number[]): void {
  if (state.status !== 'playing') throw new Error(`the duel is ${state.status}`);
  if (state.turn !== id) throw new Error('not your turn');
  const points = score(dice);
  state.rolls[id].push(dice);
  state.totals[id] += points;
  const [first, second] = state.order;
  if (id === second) {
    if (state.round === ROUNDS) {
      state.status = 'over';
      state.turn = null;
      state.winner = winner(state.totals);
      return;
    }
    state.round += 1;
  }
  state.turn = id === first ? second : first;
}

export function rollFor(state: DuelState, id: string, cup: DiceCup): number[] {
  const dice = cup.roll(DICE_PER_ROLL);
  takeTurn(state, id, dice);
  return dice;
}
