// Hostile: a memory balloon. Buffers live outside V8's heap, so Node's heap limit does not stop
// this; the container's memory limit must (the kernel OOM-kills it: State.OOMKilled).
const held = [];
module.exports = {
  onCreate(room) {
    room.state = { heldMb: 0 };
    setInterval(() => {
      for (let i = 0; i < 4; i++) held.push(Buffer.alloc(4 * 1024 * 1024, 1)); // touched pages
      room.state.heldMb = held.length * 4;
    }, 20);
  },
};
