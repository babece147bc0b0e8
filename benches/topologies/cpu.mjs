// CPU time of process trees from /proc (utime + stime of a process and all its descendants),
// for a page's own Chromium and for the server nodes.

import { readdirSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

const TICKS = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/** pid -> {ppid, seconds (user + system)}, for every process readable now. */
function table() {
  const out = new Map();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    out.set(Number(name), { ppid: Number(f[1]), seconds: (Number(f[11]) + Number(f[12])) / TICKS });
  }
  return out;
}

/** CPU seconds so far of each tree rooted at `roots` (pids), and the pids each holds. */
export function treeSeconds(roots) {
  const procs = table();
  const children = new Map();
  for (const [pid, p] of procs) {
    if (!children.has(p.ppid)) children.set(p.ppid, []);
    children.get(p.ppid).push(pid);
  }
  return roots.map((root) => {
    let seconds = 0;
    const pids = [];
    const todo = [root];
    while (todo.length) {
      const pid = todo.pop();
      const p = procs.get(pid);
      if (!p) continue;
      seconds += p.seconds;
      pids.push(pid);
      todo.push(...(children.get(pid) ?? []));
    }
    return { root, seconds, pids };
  });
}

/** The pid of the Chromium whose command line names `userDataDir` and whose parent is not a Chromium of it. */
export function chromiumRoot(userDataDir) {
  const procs = table();
  const matching = [];
  for (const pid of procs.keys()) {
    let cmd;
    try {
      cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    if (cmd.includes(`--user-data-dir=${userDataDir}`)) matching.push(pid);
  }
  const set = new Set(matching);
  const roots = matching.filter((pid) => !set.has(procs.get(pid)?.ppid));
  if (roots.length !== 1) throw new Error(`expected one Chromium for ${userDataDir}, found ${JSON.stringify(roots)}`);
  return roots[0];
}
