// A browser that cannot use UDP, for the ICE-TCP test: Chromium runs as a system user of its own
// (`sfu-e2e-noudp`, created when missing), and an nftables table in the test's network namespace
// drops every UDP packet that user sends. The server, and every other browser, keep UDP.
//
// nftables rules apply to the network namespace they are made in: the test refuses to make them
// unless it runs in one where only `lo` exists (scripts/test runs the e2e files in a fresh one), so
// the host's own ruleset is never touched.

import { execFileSync } from 'node:child_process';
import { writeFileSync, chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export const NOUDP_USER = 'sfu-e2e-noudp';
const TABLE = 'sfu_e2e_noudp';

const run = (cmd, args) => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();

/** Why UDP cannot be blocked here, or null when it can. */
export function cannotBlockUdp() {
  if (process.getuid?.() !== 0) return 'needs root (a user, nftables)';
  try {
    run('nft', ['--version']);
  } catch {
    return 'needs nft (apt-get install nftables)';
  }
  const links = run('ip', ['-o', 'link', 'show']).split('\n').map((l) => l.split(':')[1]?.trim());
  if (links.length !== 1 || links[0] !== 'lo') return 'runs only in a fresh network namespace (unshare -n), where only lo exists';
  return null;
}

export class UdpBlockedUser {
  constructor() {
    this.uid = null;
    this.gid = null;
    this.wrapperDir = null;
  }

  /** Creates the user if missing and drops its UDP. */
  create() {
    try {
      run('id', ['-u', NOUDP_USER]);
    } catch {
      run('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', NOUDP_USER]);
    }
    this.uid = Number(run('id', ['-u', NOUDP_USER]));
    this.gid = Number(run('id', ['-g', NOUDP_USER]));
    run('nft', ['add', 'table', 'inet', TABLE]);
    run('nft', ['add', 'chain', 'inet', TABLE, 'out', '{ type filter hook output priority 0; }']);
    run('nft', ['add', 'rule', 'inet', TABLE, 'out', 'meta', 'skuid', String(this.uid), 'meta', 'l4proto', 'udp', 'counter', 'drop']);
    return this;
  }

  /** {uid, gid}, for TestBrowser's `owner`. */
  get owner() {
    return { uid: this.uid, gid: this.gid };
  }

  /** An executable that runs Chromium as the user (for playwright's executablePath). */
  chromiumWrapper(chromiumPath) {
    this.wrapperDir = mkdtempSync(path.join(tmpdir(), 'sfu-e2e-noudp-'));
    chmodSync(this.wrapperDir, 0o755);
    const wrapper = path.join(this.wrapperDir, 'chromium');
    // setpriv keeps the file descriptors playwright talks to Chromium over.
    writeFileSync(wrapper, `#!/bin/sh\nexec setpriv --reuid=${this.uid} --regid=${this.gid} --clear-groups ${chromiumPath} "$@"\n`);
    chmodSync(wrapper, 0o755);
    return wrapper;
  }

  /** UDP packets of the user dropped so far. */
  droppedPackets() {
    const m = /counter packets (\d+)/.exec(run('nft', ['list', 'chain', 'inet', TABLE, 'out']));
    return m ? Number(m[1]) : 0;
  }

  destroy() {
    try {
      run('nft', ['delete', 'table', 'inet', TABLE]);
    } catch {}
    if (this.wrapperDir) rmSync(this.wrapperDir, { recursive: true, force: true });
  }
}
