// A second network namespace joined to the test's own by a veth pair, for a browser whose link
// the test constrains with tc (token bucket filter) while everything else stays on loopback.
//
//   test namespace (server, other browsers)        peer namespace (constrained browser)
//   HOST_ADDR on `vh-<tag>`  <------ veth ------>  PEER_ADDR on `vp-<tag>`
//
// A cap applies to the host side's egress: what the server sends to the peer's browser.

import { execFileSync } from 'node:child_process';
import { writeFileSync, chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

function ip(...args) {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

export class PeerNamespace {
  constructor(tag, { hostAddr = '10.77.0.1', peerAddr = '10.77.0.2' } = {}) {
    this.name = `sfu-e2e-${tag}-${process.pid}`;
    this.hostDev = `vh-${tag}`.slice(0, 15);
    this.peerDev = `vp-${tag}`.slice(0, 15);
    this.hostAddr = hostAddr;
    this.peerAddr = peerAddr;
    this.wrapperDir = null;
  }

  create() {
    ip('netns', 'add', this.name);
    // No IPv6 in the peer namespace: a veth's IPv6 address finishes duplicate address detection
    // a second or two after the link comes up, and a Chromium started meanwhile sees the network
    // change and fails the loads in flight (net::ERR_NETWORK_CHANGED). The tests use IPv4 only.
    execFileSync('ip', ['netns', 'exec', this.name, 'sh', '-c',
      'if [ -d /proc/sys/net/ipv6 ]; then echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6; echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6; fi'],
    { stdio: ['ignore', 'ignore', 'pipe'] });
    ip('link', 'add', this.hostDev, 'type', 'veth', 'peer', 'name', this.peerDev, 'netns', this.name);
    ip('addr', 'add', `${this.hostAddr}/30`, 'dev', this.hostDev);
    ip('link', 'set', this.hostDev, 'up');
    ip('-n', this.name, 'addr', 'add', `${this.peerAddr}/30`, 'dev', this.peerDev);
    ip('-n', this.name, 'link', 'set', this.peerDev, 'up');
    ip('-n', this.name, 'link', 'set', 'lo', 'up');
    return this.settle();
  }

  /**
   * Waits (at most 5 s) until every link of the peer namespace but loopback is up, so a browser
   * started next sees no network change while it loads its page. Returns this.
   */
  settle() {
    const deadline = Date.now() + 5000;
    const pause = new Int32Array(new SharedArrayBuffer(4));
    for (;;) {
      const links = execFileSync('ip', ['-n', this.name, '-o', 'link', 'show'], { encoding: 'utf8' })
        .split('\n').filter((l) => l.trim() && !/: lo[:@]/.test(l));
      if (links.every((l) => / state UP /.test(l))) return this;
      if (Date.now() > deadline) throw new Error(`links of ${this.name} not up after 5 s:\n${links.join('\n')}`);
      Atomics.wait(pause, 0, 0, 50);
    }
  }

  /** Caps what the test namespace sends to the peer at `rate` (tc syntax, e.g. '600kbit'). */
  cap(rate) {
    execFileSync('tc', ['qdisc', 'replace', 'dev', this.hostDev, 'root', 'tbf', 'rate', rate, 'burst', '32kbit', 'latency', '400ms']);
  }

  /** Packets the cap has dropped so far (its queue overflowed), or null when there is no cap. */
  capDrops() {
    const out = execFileSync('tc', ['-s', 'qdisc', 'show', 'dev', this.hostDev, 'root'], { encoding: 'utf8' });
    const m = /^qdisc tbf[\s\S]*?dropped (\d+)/m.exec(out);
    return m ? Number(m[1]) : null;
  }

  uncap() {
    execFileSync('tc', ['qdisc', 'del', 'dev', this.hostDev, 'root']);
  }

  /** An executable that runs Chromium inside the peer namespace (for playwright's executablePath). */
  chromiumWrapper(chromiumPath) {
    this.wrapperDir = mkdtempSync(path.join(tmpdir(), 'sfu-e2e-netns-'));
    const wrapper = path.join(this.wrapperDir, 'chromium');
    writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${this.name} ${chromiumPath} "$@"\n`);
    chmodSync(wrapper, 0o755);
    return wrapper;
  }

  destroy() {
    try {
      ip('netns', 'del', this.name); // takes the veth pair with it
    } catch {}
    if (this.wrapperDir) rmSync(this.wrapperDir, { recursive: true, force: true });
  }
}
