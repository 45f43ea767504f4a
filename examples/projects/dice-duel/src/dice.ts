// Dice from a seeded generator: the same seed rolls the same dice, so a match can be replayed
// (and tested) exactly. seedrandom is a CommonJS package from npm, required from node_modules.
import seedrandom from 'seedrandom';

export type Die = 1 | 2 | 3 | 4 | 5 | 6;

export interface DiceCup {
  roll(count: number): Die[];
}

export function cup(seed: string): DiceCup {
  const random = seedrandom(seed);
  return {
    roll(count: number): Die[] {
      const dice: Die[] = [];
      for (let i = 0; i < count; i++) dice.push((Math.floor(random() * 6) + 1) as Die);
      return dice;
    },
  };
}
