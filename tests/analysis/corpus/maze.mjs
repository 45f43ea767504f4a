// Maze race: the maze is carved by a generator (iterative backtracker) at module load.
const WIDTH = 21;
const HEIGHT = 21;
const moduleUrl = import.meta.url;

function* carve(width, height, rng = Math.random) {
  const grid = Array.from({ length: height }, () => Array(width).fill(1));
  const stack = [[1, 1]];
  grid[1][1] = 0;
  while (stack.length) {
    const [x, y] = stack.at(-1);
    const options = [[2, 0], [-2, 0], [0, 2], [0, -2]]
      .map(([dx, dy]) => [x + dx, y + dy, x + dx / 2, y + dy / 2])
      .filter(([nx, ny]) => nx > 0 && ny > 0 && nx < width - 1 && ny < height - 1 && grid[ny][nx] === 1);
    if (!options.length) {
      stack.pop();
      continue;
    }
    const [nx, ny, wx, wy] = options[Math.floor(rng() * options.length)];
    grid[wy][wx] = 0;
    grid[ny][nx] = 0;
    stack.push([nx, ny]);
    yield grid;
  }
  return grid;
}

let maze;
for (const step of carve(WIDTH, HEIGHT)) maze = step;
const layout = await Promise.resolve(maze.map((row) => row.join('')));

export default {
  maxPlayers: 8,

  onCreate(room) {
    room.state = { positions: {}, finished: [] };
    room.setMetadata({ size: `${WIDTH}x${HEIGHT}`, source: moduleUrl.split('/').at(-1) });
  },

  onJoin(room, player) {
    room.state.positions[player.id] = { x: 1, y: 1 };
    room.send(player.id, 'maze', layout);
  },

  onMessage(room, player, type, data) {
    const pos = room.state.positions[player.id];
    if (type !== 'step' || !pos) return;
    const x = pos.x + Math.sign(data?.dx ?? 0);
    const y = pos.y + Math.sign(data?.dy ?? 0);
    if (layout[y]?.[x] === '0') Object.assign(pos, { x, y });
    if (x === WIDTH - 2 && y === HEIGHT - 2 && !room.state.finished.includes(player.id)) {
      room.state.finished.push(player.id);
    }
    room.broadcast('positions', room.state);
  },
};
