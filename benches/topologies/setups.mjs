// The servers behind each row of the topology table, started and stopped the same way:
//   sfu      one node (E2E_SFU_BIN, default target/release/sfu)
//   cluster  two nodes (a, b) in namespaces on a bridge, one redis-server (tests/e2e/lib/cluster.mjs)
//   mesh     one node of a build with mesh rooms (MESH_SFU_BIN, its SDK from MESH_WEB_DIR), every
//            room a mesh of up to 4
//   mcu      one node of a build with audio mixing (MCU_SFU_BIN), [audio] mode = "mix"
// and, on the one-node SFU, the transports: udp, ice-tcp (the pages' Chromium cannot send UDP,
// tests/e2e/lib/noudp.mjs), turn-udp and turn-tcp (the embedded TURN, pages relay-only, the other
// TURN listener dropped by nftables as in tests/e2e/zb-turn.test.mjs).

import { spawn, execFileSync } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT, SFU_BIN, LOG_DIR, poll, portsFor } from '../../tests/e2e/lib/server.mjs';
import { Cluster } from '../../tests/e2e/lib/cluster.mjs';
import { CHROMIUM_PATH } from '../../tests/e2e/lib/browser.mjs';
import { cannotBlockUdp, UdpBlockedUser } from '../../tests/e2e/lib/noudp.mjs';

/** Every node gets two media shards, whatever the machine, so rows differ only in topology. */
const SHARDS = '2';
const SLOT = 41;
const NFT_TABLE = 'topo_turn';

/**
 * Extra server settings for every node, from TOPO_SERVER_ENV ("SFU_A=x SFU_B=y"; not SFU_*
 * itself: the nodes are given none of the caller's SFU_* variables).
 */
export const SERVER_ENV = Object.fromEntries((process.env.TOPO_SERVER_ENV ?? '').split(/\s+/).filter(Boolean)
  .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));

/** Why `topology` cannot run here (a binary missing), or null. */
export function unavailable(topology) {
  // Mesh and MCU rows run the main binary unless given another (MCU: it must be built with
  // --features audio-mix, or the server logs `audio mixing refused` and forwards).
  if (topology === 'mesh' && process.env.MESH_SFU_BIN && !existsSync(process.env.MESH_SFU_BIN)) {
    return `MESH_SFU_BIN ${process.env.MESH_SFU_BIN} not found`;
  }
  if (topology === 'mcu' && process.env.MCU_SFU_BIN && !existsSync(process.env.MCU_SFU_BIN)) {
    return `MCU_SFU_BIN ${process.env.MCU_SFU_BIN} not found`;
  }
  if (!existsSync(SFU_BIN)) return `${SFU_BIN} not found`;
  return null;
}

/** Why `transport` cannot run here, or null. */
export function transportUnavailable(transport) {
  if (transport === 'ice-tcp') return cannotBlockUdp();
  return null;
}

function nft(args, quiet = false) {
  try {
    execFileSync('nft', args, { stdio: ['ignore', 'ignore', quiet ? 'ignore' : 'pipe'] });
  } catch (e) {
    if (!quiet) throw e;
  }
}

/** One server process on loopback, its output in LOG_DIR/<name>.server.log. */
class Node {
  constructor(name, bin, env) {
    this.name = name;
    this.bin = bin;
    const ports = portsFor(SLOT);
    Object.assign(this, ports);
    this.httpUrl = `http://127.0.0.1:${ports.httpPort}`;
    this.env = {
      ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SFU_'))),
      SFU_HTTP_PORT: String(ports.httpPort),
      SFU_RTC__UDP_PORT_START: String(ports.udpPortStart),
      SFU_RTC__TCP_PORT: String(ports.tcpPort),
      SFU_RTC__SHARDS: SHARDS,
      ...env,
      ...SERVER_ENV,
    };
  }

  async start() {
    mkdirSync(LOG_DIR, { recursive: true });
    const log = createWriteStream(path.join(LOG_DIR, `${this.name}.server.log`), { flags: 'w' });
    this.proc = spawn(this.bin, [], { cwd: REPO_ROOT, env: this.env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc.stdout.pipe(log);
    this.proc.stderr.pipe(log);
    this.exited = new Promise((r) => this.proc.once('exit', r));
    await poll(async () => {
      if (this.proc.exitCode !== null) throw Object.assign(new Error(`${this.bin} exited (${this.name}.server.log)`), { fatal: true });
      return (await fetch(`${this.httpUrl}/healthz`, { signal: AbortSignal.timeout(2000) })).status === 200;
    }, { timeoutMs: 30_000, intervalMs: 100, what: `${this.httpUrl}/healthz` });
  }

  async stop() {
    if (!this.proc || this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.proc.kill('SIGTERM');
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 5000);
    await this.exited;
    clearTimeout(t);
  }
}

/**
 * Starts the servers of one row. Returns {pageUrl(i), nodeUrls, serverPids(), browserOptions,
 * joinOptions, udpDropped(), stop()}: page i joins at pageUrl(i); simulated participants (and
 * the /metrics reads) at nodeUrls, the HTTP address of every node.
 */
export async function startTopology(topology, transport, name) {
  if (topology === 'cluster') return startCluster(name);
  const env = {};
  let bin = SFU_BIN;
  if (topology === 'mesh') {
    bin = process.env.MESH_SFU_BIN ?? SFU_BIN;
    Object.assign(env, { SFU_ROOMS__TOPOLOGY: 'mesh', SFU_ROOMS__MESH_MAX_PARTICIPANTS: '4' });
    if (process.env.MESH_WEB_DIR) env.SFU_HTTP__WEB_DIR = process.env.MESH_WEB_DIR;
  } else if (topology === 'mcu') {
    bin = process.env.MCU_SFU_BIN ?? SFU_BIN;
    env.SFU_AUDIO__MODE = 'mix';
    if (process.env.MCU_WEB_DIR) env.SFU_HTTP__WEB_DIR = process.env.MCU_WEB_DIR;
  } else {
    env.SFU_HTTP__WEB_DIR = path.join(REPO_ROOT, 'web');
  }
  const base = portsFor(SLOT).udpPortStart;
  const turnPort = base + 90;
  if (transport.startsWith('turn')) {
    Object.assign(env, {
      SFU_TURN__SECRET: 'topologies-bench-turn-secret-0123456789',
      SFU_TURN__ENABLED: 'true',
      SFU_TURN__UDP_PORT: String(turnPort),
      SFU_TURN__TCP_PORT: String(turnPort),
      SFU_TURN__RELAY_PORT_MIN: String(base + 40),
      SFU_TURN__RELAY_PORT_MAX: String(base + 79),
    });
  }
  const node = new Node(name, bin, env);
  await node.start();
  let blocked = null;
  const browserOptions = {};
  const joinOptions = {};
  if (transport === 'ice-tcp') {
    blocked = new UdpBlockedUser().create();
    Object.assign(browserOptions, { executablePath: blocked.chromiumWrapper(CHROMIUM_PATH), owner: blocked.owner });
  } else if (transport.startsWith('turn')) {
    // Relay only, through the one listener this row measures.
    joinOptions.iceTransportPolicy = 'relay';
    nft(['delete', 'table', 'inet', NFT_TABLE], true);
    nft(['add', 'table', 'inet', NFT_TABLE]);
    nft(['add', 'chain', 'inet', NFT_TABLE, 'out', '{ type filter hook output priority 0 ; }']);
    nft(['add', 'rule', 'inet', NFT_TABLE, 'out', transport === 'turn-udp' ? 'tcp' : 'udp', 'dport', String(turnPort), 'drop']);
  }
  return {
    pageUrl: () => node.httpUrl,
    nodeUrls: [node.httpUrl],
    serverPids: () => [node.proc.pid],
    browserOptions,
    joinOptions,
    udpDropped: () => blocked?.droppedPackets() ?? null,
    async stop() {
      await node.stop();
      blocked?.destroy();
      if (transport.startsWith('turn')) nft(['delete', 'table', 'inet', NFT_TABLE], true);
    },
  };
}

async function startCluster(name) {
  const env = { SFU_RTC__SHARDS: SHARDS, ...SERVER_ENV };
  const cluster = new Cluster(name, { a: { env }, b: { env } });
  await cluster.setup();
  try {
    await cluster.start();
  } catch (e) {
    await cluster.teardown();
    throw e;
  }
  const nodes = [cluster.nodes.a, cluster.nodes.b];
  return {
    pageUrl: (i) => nodes[i % 2].httpUrl,
    nodeUrls: nodes.map((n) => n.httpUrl),
    serverPids: () => nodes.map((n) => n.pid),
    browserOptions: { extraArgs: [`--unsafely-treat-insecure-origin-as-secure=${cluster.origins.join(',')}`] },
    joinOptions: {},
    udpDropped: () => null,
    stop: () => cluster.teardown(),
  };
}
