// Scoring: the sum of the dice, plus 10 for every pair of equal dice. Pure functions, no room.
import type { Die } from './dice.js';

export const DICE_PER_ROLL = 5;
export const ROUNDS = 3;

export function score(dice: readonly number[]): number {
  if (dice.length !== DICE_PER_ROLL) {
    throw new RangeError(`a roll has ${DICE_PER_ROLL} dice, got ${dice.length}`);
  }
  const counts = new Map<number, number>();
  for (const die of dice) {
    if (!Number.isInteger(die) || die < 1 || die > 6) throw new RangeError(`a die shows 1 to 6, got ${die}`);
    counts.set(die, (counts.get(die) ?? 0) + 1);
  }
  let pairs = 0;
  for (const n of counts.values()) pairs += Math.floor(n / 2);
  return dice.reduce((sum, die) => sum + die, 0) + 10 * pairs;
}

export function winner(totals: Record<string, number>): string | null {
  const ranked = Object.entries(totals).sort((a, b) => b[1] - a[1]);
  if (ranked.length < 2 || ranked[0][1] === ranked[1][1]) return null;
  return ranked[0][0];
}

export type { Die };
