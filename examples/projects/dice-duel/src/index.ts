// Dice duel: two players, three rounds, five dice a roll; the higher total wins.
// Frames from a client:
//   {"type": "roll"}                            on your turn: the room rolls your five dice
//   {"type": "claim", "data": {"dice": [..]}}   a hand-made roll (testing aid): scored as given,
//                                               so a bad die is refused with an "error" frame
// The room answers with {"type": "rolled", "data": {"player", "dice", "state"}}.
import { cup, type DiceCup } from './dice.js';
import { addPlayer, newDuel, rollFor, takeTurn, type DuelState } from './state.js';

interface Player { id: string }
interface Room {
  id?: string;
  state: DuelState;
  broadcast(type: string, data: unknown): void;
  send(playerId: string, type: string, data: unknown): void;
  setMetadata(meta: Record<string, unknown>): void;
  lock(): void;
}

const cups = new WeakMap<object, DiceCup>();

const game = {
  maxPlayers: 2,

  onCreate(room: Room): void {
    const seed = `dice-duel:${room.id ?? 'room'}`;
    room.state = newDuel(seed);
    cups.set(room, cup(seed));
    room.setMetadata({ status: 'waiting' });
  },

  onJoin(room: Room, player: Player): void {
    addPlayer(room.state, player.id);
    if (room.state.status === 'playing') room.lock();
    room.send(player.id, 'seat', { position: room.state.order.indexOf(player.id) });
    room.broadcast('state', room.state);
  },

  onMessage(room: Room, player: Player, type: string, data: { dice?: number[] } | undefined): void {
    let dice: number[];
    if (type === 'roll') {
      dice = rollFor(room.state, player.id, cups.get(room)!);
    } else if (type === 'claim') {
      dice = data?.dice ?? [];
      takeTurn(room.state, player.id, dice);
    } else {
      throw new Error(`unknown message type "${type}" (use "roll")`);
    }
    room.broadcast('rolled', { player: player.id, dice, state: room.state });
    room.setMetadata({ status: room.state.status, round: room.state.round });
  },
};

export default game;
