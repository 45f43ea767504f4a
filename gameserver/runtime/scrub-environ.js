'use strict';
// `delete process.env.X` only unlinks a variable from libc's environ array: the original bytes stay
// in the process's memory, and /proc/<pid>/environ keeps showing them to anyone with the same uid,
// the game included. This overwrites the values in place through /proc/<pid>/mem, for this process
// and for its parent when that is the container's init (docker-init / tini, pid 1), which was
// started with the same environment. Best effort: returns the pids it could not scrub.

const fs = require('node:fs');

/** [env_start, env_end) of a process (user-space addresses fit in a double), from /proc/<pid>/stat (fields 50 and 51). */
function environRange(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
  // The command name (field 2) may contain spaces and parentheses: count from the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).trim().split(' ');
  // fields[0] is field 3 (state), so field N is fields[N - 3].
  return [Number(fields[50 - 3]), Number(fields[51 - 3])];
}

function scrubPid(pid, names) {
  const [start, end] = environRange(pid);
  const length = end - start;
  if (!(length > 0) || length > 1024 * 1024) throw new RangeError(`environ of ${pid} has length ${length}`);
  const fd = fs.openSync(`/proc/${pid}/mem`, 'r+');
  try {
    const block = Buffer.alloc(length);
    fs.readSync(fd, block, 0, length, start);
    let offset = 0;
    while (offset < length) {
      let stop = block.indexOf(0, offset);
      if (stop < 0) stop = length;
      const entry = block.toString('latin1', offset, stop);
      const eq = entry.indexOf('=');
      if (eq > 0 && names.includes(entry.slice(0, eq))) {
        const value = block.subarray(offset + eq + 1, stop);
        value.fill(0x78); // 'x': same length, nothing else in the block moves
        fs.writeSync(fd, value, 0, value.length, start + offset + eq + 1);
      }
      offset = stop + 1;
    }
  } finally {
    fs.closeSync(fd);
  }
}

function scrubEnviron(names) {
  const failed = [];
  const pids = [process.pid];
  if (process.ppid === 1 && process.pid !== 1) pids.push(1); // our init holds the same environment
  for (const pid of pids) {
    try {
      scrubPid(pid === process.pid ? 'self' : pid, names);
    } catch (err) {
      failed.push(`${pid}: ${err.code || err.message}`);
    }
  }
  return failed;
}

module.exports = { scrubEnviron };
