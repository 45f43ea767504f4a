// Versus Tetris: the well is a Uint8Array, cleared lines send garbage to the opponent.
const WIDTH = 10;
const HEIGHT = 20;
const SHAPES = {
  I: [0b0000_1111_0000_0000],
  O: [0b0110_0110_0000_0000],
  T: [0b0100_1110_0000_0000],
  S: [0b0110_1100_0000_0000],
  Z: [0b1100_0110_0000_0000],
};

function cellsOf(mask) {
  const cells = [];
  for (let bit = 15; bit >= 0; bit--) {
    if (mask & (1 << bit)) cells.push([(15 - bit) % 4, Math.floor((15 - bit) / 4)]);
  }
  return cells;
}

class Well {
  grid = new Uint8Array(WIDTH * HEIGHT);

  fits(cells, x, y) {
    return cells.every(([cx, cy]) => {
      const gx = x + cx;
      const gy = y + cy;
      return gx >= 0 && gx < WIDTH && gy < HEIGHT && (gy < 0 || this.grid[gy * WIDTH + gx] === 0);
    });
  }

  lock(cells, x, y, colour) {
    for (const [cx, cy] of cells) this.grid[(y + cy) * WIDTH + (x + cx)] = colour;
    return this.clearLines();
  }

  clearLines() {
    let cleared = 0;
    for (let row = HEIGHT - 1; row >= 0; row--) {
      const line = this.grid.subarray(row * WIDTH, (row + 1) * WIDTH);
      if (line.every((c) => c !== 0)) {
        this.grid.copyWithin(WIDTH, 0, row * WIDTH);
        this.grid.fill(0, 0, WIDTH);
        cleared += 1;
        row += 1;
      }
    }
    return cleared;
  }
}

module.exports = {
  maxPlayers: 2,
  tickRate: 4,

  onCreate(room) {
    room.state = { wells: {}, pieces: {} };
  },

  onJoin(room, player) {
    room.state.wells[player.id] = new Well();
    room.state.pieces[player.id] = { shape: 'T', x: 3, y: -1 };
  },

  onMessage(room, player, type, data) {
    const piece = room.state.pieces[player.id];
    const well = room.state.wells[player.id];
    if (!piece || type !== 'move') return;
    const dx = Math.sign(data?.dx ?? 0);
    const cells = cellsOf(SHAPES[piece.shape][0]);
    if (well.fits(cells, piece.x + dx, piece.y)) piece.x += dx;
  },

  onTick(room) {
    for (const [id, piece] of Object.entries(room.state.pieces)) {
      const well = room.state.wells[id];
      const cells = cellsOf(SHAPES[piece.shape][0]);
      if (well.fits(cells, piece.x, piece.y + 1)) {
        piece.y += 1;
        continue;
      }
      const cleared = well.lock(cells, piece.x, piece.y, 1 + Object.keys(SHAPES).indexOf(piece.shape));
      const keys = Object.keys(SHAPES);
      room.state.pieces[id] = { shape: keys[Math.floor(Math.random() * keys.length)], x: 3, y: -1 };
      if (cleared > 1) room.broadcast('garbage', { from: id, lines: cleared - 1 });
    }
    room.broadcast('wells', Object.fromEntries(
      Object.entries(room.state.wells).map(([id, well]) => [id, Array.from(well.grid)]),
    ));
  },

  onLeave(room, player) {
    delete room.state.wells[player.id];
    delete room.state.pieces[player.id];
  },
};
