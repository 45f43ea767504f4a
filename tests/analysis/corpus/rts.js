// A tiny real-time strategy economy: workers gather, a priority queue schedules production.
class PriorityQueue {
  #heap = [];

  get size() {
    return this.#heap.length;
  }

  push(item, priority) {
    this.#heap.push({ item, priority });
    let i = this.#heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.#heap[parent].priority <= this.#heap[i].priority) break;
      [this.#heap[parent], this.#heap[i]] = [this.#heap[i], this.#heap[parent]];
      i = parent;
    }
  }

  pop() {
    const top = this.#heap[0];
    const last = this.#heap.pop();
    if (this.#heap.length && last) {
      this.#heap[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < this.#heap.length && this.#heap[l].priority < this.#heap[m].priority) m = l;
        if (r < this.#heap.length && this.#heap[r].priority < this.#heap[m].priority) m = r;
        if (m === i) break;
        [this.#heap[m], this.#heap[i]] = [this.#heap[i], this.#heap[m]];
        i = m;
      }
    }
    return top?.item;
  }
}

const COSTS = { worker: 50, soldier: 100, tower: 250 };

module.exports = {
  maxPlayers: 4,
  tickRate: 5,

  onCreate(room) {
    room.state = { economies: {}, queue: new PriorityQueue(), tick: 0 };
  },

  onJoin(room, player) {
    room.state.economies[player.id] ??= { gold: 200, workers: 3, units: {} };
  },

  onMessage(room, player, type, data) {
    const eco = room.state.economies[player.id];
    if (type !== 'build') throw new Error('send {"type": "build", "data": {"unit": "worker"}}');
    const unit = data?.unit;
    const cost = COSTS[unit];
    if (!cost) throw new Error(`cannot build ${unit}`);
    if (eco.gold < cost) throw new Error('not enough gold');
    eco.gold -= cost;
    room.state.queue.push({ owner: player.id, unit }, room.state.tick + cost / 25);
  },

  onLeave(room, player) {
    delete room.state.economies[player.id];
  },

  onTick(room) {
    const state = room.state;
    state.tick += 1;
    for (const eco of Object.values(state.economies)) {
      eco.gold += eco.workers * 2;
      eco.rich ||= eco.gold > 1_000;
      eco.rich &&= eco.gold > 500;
    }
    while (state.queue.size) {
      const job = state.queue.pop();
      const eco = state.economies[job.owner];
      if (!eco) continue;
      if (job.unit === 'worker') eco.workers += 1;
      eco.units[job.unit] = (eco.units[job.unit] ?? 0) + 1;
    }
    room.broadcast('economy', state.economies);
  },
};
