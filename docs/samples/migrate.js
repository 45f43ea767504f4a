// A new game version's onMigrate (docs/writing-a-game.md "Rolling update"), next to the module's
// other exports; tests/gameserver/test_migrate.py runs it on a tic-tac-toe room of the version before.
module.exports = {
  durable: true,
  onMigrate(room, oldState, fromVersion) {
    // room.state === oldState here; room.players, metadata and the lock are already back.
    if (!Array.isArray(oldState.board)) {
      throw new Error(`no board in a room of ${fromVersion}`); // the room stays on the old version
    }
    return { ...oldState, migratedFrom: fromVersion }; // a returned value becomes room.state
    // (or change room.state in place and return nothing)
  },
};
