// A game that serves for a few seconds, then blows its memory limit: the kernel OOM-kills it.
// Used to check the restart policy and what a failed server's status history says.
const held = [];
module.exports = {
  onJoin(room, player) {},
  onCreate(room) {
    console.log("serving, ballooning soon");
    setTimeout(() => {
      console.log("ballooning now");
      setInterval(() => {
        for (let i = 0; i < 4; i++) held.push(Buffer.alloc(4 * 1024 * 1024, 1));
      }, 20);
    }, 2500);
  },
};
