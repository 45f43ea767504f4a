// Hostile probe: untrusted code looking around its container. Each `probe` message names one
// check; the answer comes back as a `result` frame. Everything here runs as the game, in the
// runtime's own process, with the runtime's own Node (net.connect, not busybox wget).
const fs = require('fs');
const net = require('net');
const path = require('path');
const childProcess = require('child_process');

function attempt(fn) {
  try {
    return { ok: true, value: fn() };
  } catch (err) {
    return { ok: false, code: err.code || err.name, message: String(err.message).slice(0, 200) };
  }
}

function statusFields(pid) {
  const out = {};
  for (const line of fs.readFileSync(`/proc/${pid}/status`, 'utf8').split('\n')) {
    const m = /^(\w+):\s*(.*)$/.exec(line);
    if (m) out[m[1]] = m[2];
  }
  return out;
}

function connect(host, port, timeoutMs) {
  return new Promise((resolve) => {
    const started = Date.now();
    const sock = net.connect({ host, port });
    const done = (outcome) => {
      sock.destroy();
      resolve({ host, port, outcome, ms: Date.now() - started });
    };
    sock.setTimeout(timeoutMs, () => done('timeout'));
    sock.once('connect', () => done('connected'));
    sock.once('error', (err) => done(err.code || err.message));
  });
}

function zombies() {
  const found = [];
  for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    const status = attempt(() => statusFields(pid));
    if (status.ok && status.value.State && status.value.State.startsWith('Z')) found.push(pid);
  }
  return found;
}

const checks = {
  self() {
    return {
      uid: process.getuid(), gid: process.getgid(), euid: process.geteuid(),
      groups: process.getgroups(),
      status: statusFields('self'),
      pid1: fs.readFileSync('/proc/1/cmdline', 'utf8').split('\0').filter(Boolean),
      pid: process.pid,
      mountinfo: fs.readFileSync('/proc/self/mountinfo', 'utf8'),
      envKeys: Object.keys(process.env),
    };
  },
  write({ file }) {
    return attempt(() => { fs.writeFileSync(file, 'x'); return 'written'; });
  },
  execTmp() {
    // A script with our own node as interpreter, on the tmpfs: noexec must refuse it.
    const file = path.join('/tmp', `run-${process.pid}.js`);
    fs.writeFileSync(file, `#!${process.execPath}\nconsole.log('ran');\n`, { mode: 0o755 });
    const direct = attempt(() => childProcess.execFileSync(file, { stdio: 'pipe' }).toString());
    const mode = (fs.statSync(file).mode & 0o777).toString(8);
    fs.unlinkSync(file);
    return { direct, mode };
  },
  async zombies() {
    // An orphan: the child exits at once, the grandchild (re-parented to pid 1) exits 200 ms later.
    const code = "require('child_process').spawn(process.execPath, ['-e', 'setTimeout(() => {}, 200)'],"
      + " { detached: true, stdio: 'ignore' }).unref()";
    childProcess.spawnSync(process.execPath, ['-e', code], { stdio: 'ignore' });
    await new Promise((resolve) => setTimeout(resolve, 1500));
    return { zombies: zombies() };
  },
  async connect({ targets, timeoutMs = 2000 }) {
    return Promise.all(targets.map(([host, port]) => connect(host, port, timeoutMs)));
  },
  secrets() {
    const read = (file) => attempt(() => fs.readFileSync(file, 'latin1'));
    return {
      env: Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('GSF_'))),
      selfEnviron: read('/proc/self/environ'),
      pid1Environ: read('/proc/1/environ'),
      parentEnviron: read(`/proc/${process.ppid}/environ`),
      selfCmdline: read('/proc/self/cmdline'),
    };
  },
};

module.exports = {
  maxPlayers: 8,
  onCreate(room) {
    room.state = { probes: 0 };
  },
  async onMessage(room, player, type, data) {
    if (type !== 'probe') throw new Error('send {"type": "probe", "data": {"op": ...}}');
    room.state.probes += 1;
    const check = checks[data.op];
    if (!check) throw new Error(`no check ${data.op}`);
    room.send(player.id, 'result', { op: data.op, result: await check(data) });
  },
};
