// Several SFU nodes on one machine for the cluster tests (docs/cluster.md, "Test plan"): each
// node is a "host" of its own, a network namespace on a shared bridge, and one real redis-server
// coordinates them.
//
//   suite namespace (this process, the browsers, Redis at 10.88.0.1:6379)
//     sfu-br0 10.88.0.1/24
//       |- veth -- namespace sfu-a-<pid>: node a at 10.88.0.11 (HTTP 7880, relay 7882, UDP 20000..)
//       |- veth -- namespace sfu-b-<pid>: node b at 10.88.0.12
//       '- veth -- namespace sfu-c-<pid>: node c at 10.88.0.13
//
// The suite must run in a network namespace of its own (`unshare -n`, as scripts/test does): the
// bridge and Redis are made in it. Namespaces and processes are removed when the file ends, also
// when it fails or is interrupted, and a run killed outright is cleaned up by the next one.

import { spawn, execFileSync } from 'node:child_process';
import { createWriteStream, mkdirSync, readFileSync, readlinkSync, writeFileSync, rmSync, existsSync } from 'node:fs';
import { before, after } from 'node:test';
import path from 'node:path';
import { REPO_ROOT, SFU_BIN, LOG_DIR, poll, sleep } from './server.mjs';
import { launchBrowser } from './browser.mjs';
import { metric } from './ingress.mjs';

export const BRIDGE = 'sfu-br0';
export const BRIDGE_ADDR = '10.88.0.1';
export const REDIS_PORT = 6379;
export const REDIS_URL = `redis://${BRIDGE_ADDR}:${REDIS_PORT}`;
export const HTTP_PORT = 7880;
export const RELAY_PORT = 7882;
const UDP_PORT_START = 20000;
/** The secret every node shares (at least 32 bytes), and one that fits none of them. */
export const CLUSTER_SECRET = 'e2e-cluster-secret-0123456789abcdef';
export const OTHER_SECRET = 'e2e-another-secret-fedcba9876543210';
/** Node name -> its address on the bridge. */
const NODE_ADDRS = { a: '10.88.0.11', b: '10.88.0.12', c: '10.88.0.13' };
const NAMESPACE = /^sfu-([a-z])-(\d+)$/;

function run(cmd, args) {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

const ip = (...args) => run('ip', args);

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The network namespace this process runs in, as /proc shows it ("net:[4026532...]"). */
const ownNetns = () => readlinkSync('/proc/self/ns/net');

/**
 * Refuses to touch the host's network: the bridge, routes and Redis belong in a test namespace.
 * A namespace made for the tests has no default route; the host's has one (and where PID 1's
 * namespace can be read, this one must differ from it).
 */
function assertIsolated() {
  const refuse = (why) => {
    throw new Error(`the cluster tests build a bridge and start Redis, and ${why}: run them in a network namespace ` +
      "of their own (unshare -n sh -c 'ip link set lo up && ...', as scripts/test does)");
  };
  if (ip('route', 'show', 'default').trim() || ip('-6', 'route', 'show', 'default').trim()) {
    refuse('this network namespace has a default route');
  }
  let init = null;
  try {
    init = readlinkSync('/proc/1/ns/net');
  } catch {}
  if (init !== null && init === ownNetns()) refuse("this is PID 1's network namespace");
}

/** What a run that was killed outright left behind: its namespaces (with their nodes), bridge and Redis. */
function removeLeftovers(redisPidFile) {
  for (const line of ip('netns', 'list').split('\n')) {
    const name = line.split(' ')[0];
    const m = NAMESPACE.exec(name);
    if (!m || alive(Number(m[2]))) continue;
    for (const pid of ip('netns', 'pids', name).split('\n').filter(Boolean)) {
      try { process.kill(Number(pid), 'SIGKILL'); } catch {}
    }
    try { ip('netns', 'del', name); } catch {}
  }
  try { ip('link', 'del', BRIDGE); } catch {}
  if (existsSync(redisPidFile)) {
    const pid = Number(readFileSync(redisPidFile, 'utf8'));
    try {
      if (readFileSync(`/proc/${pid}/comm`, 'utf8').startsWith('redis')) process.kill(pid, 'SIGKILL');
    } catch {}
    rmSync(redisPidFile, { force: true });
  }
}

/** A child process whose output goes to a log file and whose exit is a promise. */
class Child {
  constructor(logFile) {
    this.logFile = logFile;
    mkdirSync(LOG_DIR, { recursive: true });
    writeFileSync(logFile, ''); // each run of the file starts its logs afresh; restarts append
    this.proc = null;
    this.exited = null;
  }

  spawn(cmd, args, env, note) {
    mkdirSync(LOG_DIR, { recursive: true });
    const log = createWriteStream(this.logFile, { flags: 'a' });
    log.write(`\n==== ${new Date().toISOString()} ${note}\n`);
    this.proc = spawn(cmd, args, { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc.stdout.pipe(log);
    this.proc.stderr.pipe(log);
    const proc = this.proc;
    this.exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  }

  get pid() {
    return this.proc?.pid ?? null;
  }

  get running() {
    return !!this.proc && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  signal(sig) {
    if (this.running) this.proc.kill(sig);
  }

  /** Resolves with {code, signal} once the process ended; throws after `timeoutMs`. */
  async waitExit(timeoutMs = 10_000) {
    if (!this.proc) return null;
    let timer;
    const late = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${this.logFile}: still running after ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      return await Promise.race([this.exited, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Ends the process now (SIGKILL) and waits for it. */
  async kill() {
    if (!this.running) return;
    this.proc.kill('SIGKILL');
    await this.waitExit(5000).catch(() => {});
  }

  logTail(lines = 40) {
    try {
      return readFileSync(this.logFile, 'utf8').split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }
}

/** The one redis-server, bound to the bridge address, with no persistence. */
export class Redis extends Child {
  constructor(name, pidFile) {
    super(path.join(LOG_DIR, `${name}.redis.log`));
    this.pidFile = pidFile;
  }

  async start() {
    this.spawn('redis-server', ['--bind', BRIDGE_ADDR, '--port', String(REDIS_PORT), '--save', '', '--appendonly', 'no',
      // Reached from the node namespaces, which are not loopback; nothing else can reach this bridge.
      '--protected-mode', 'no'], process.env, 'redis-server');
    writeFileSync(this.pidFile, String(this.pid));
    await poll(async () => {
      if (!this.running) throw Object.assign(new Error(`redis-server exited:\n${this.logTail()}`), { fatal: true });
      return this.cli('PING').trim() === 'PONG';
    }, { timeoutMs: 10_000, intervalMs: 100, what: 'redis-server answering PING' });
  }

  /** Runs redis-cli against it; returns its output. */
  cli(...args) {
    return run('redis-cli', ['-h', BRIDGE_ADDR, '-p', String(REDIS_PORT), ...args]);
  }

  /** Whether `key` exists (redis-cli EXISTS). */
  exists(key) {
    return this.cli('EXISTS', key).trim() === '1';
  }

  pause() { this.signal('SIGSTOP'); }

  resume() { this.signal('SIGCONT'); }

  /** Kills it (SIGKILL) and starts an empty one on the same address. */
  async restartEmpty() {
    await this.kill();
    await this.start();
  }

  async stop() {
    this.resume(); // a stopped process does not die of SIGKILL until continued on some kernels
    await this.kill();
    rmSync(this.pidFile, { force: true });
  }
}

/** One SFU node in its own namespace. */
export class ClusterNode extends Child {
  constructor(fileName, id, { env = {}, secret = CLUSTER_SECRET, drainTimeoutSecs = 30 } = {}) {
    super(path.join(LOG_DIR, `${fileName}.node-${id}.log`));
    this.id = id;
    this.addr = NODE_ADDRS[id];
    if (!this.addr) throw new Error(`no address for node '${id}'`);
    this.namespace = `sfu-${id}-${process.pid}`;
    this.nodeId = `e2e-${id}`;
    this.secret = secret;
    this.drainTimeoutSecs = drainTimeoutSecs;
    this.extraEnv = env;
  }

  get httpUrl() { return `http://${this.addr}:${HTTP_PORT}`; }

  get wsUrl() { return `ws://${this.addr}:${HTTP_PORT}/rtc`; }

  get relayAddr() { return `${this.addr}:${RELAY_PORT}`; }

  /** The Redis key of this node's registration. */
  get redisKey() { return `sfu:node:${this.nodeId}`; }

  /** Makes the namespace and its link to the bridge. */
  plug() {
    const host = `sfu-v${this.id}`;
    try { ip('link', 'del', host); } catch {} // left by a file that could not clean up
    ip('netns', 'add', this.namespace);
    ip('link', 'add', host, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', this.namespace);
    ip('link', 'set', host, 'master', BRIDGE, 'up');
    ip('-n', this.namespace, 'addr', 'add', `${this.addr}/24`, 'dev', 'eth0');
    ip('-n', this.namespace, 'link', 'set', 'eth0', 'up');
    ip('-n', this.namespace, 'link', 'set', 'lo', 'up');
  }

  unplug() {
    try { ip('netns', 'del', this.namespace); } catch {} // the veth pair goes with it
  }

  get env() {
    // Not the caller's SFU_* variables: the server reads every one as a config key.
    const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SFU_')));
    return {
      ...base,
      SFU_DEV: 'true', // the dev token endpoint, on a non-loopback address
      SFU_BIND: this.addr,
      SFU_HTTP_PORT: String(HTTP_PORT),
      SFU_RTC__UDP_PORT_START: String(UDP_PORT_START),
      // This tree's SDK, whatever the binary has compiled in.
      SFU_HTTP__WEB_DIR: path.join(REPO_ROOT, 'web'),
      SFU_CLUSTER__REDIS_URL: REDIS_URL,
      SFU_CLUSTER__SECRET: this.secret,
      SFU_CLUSTER__NODE_ID: this.nodeId,
      SFU_CLUSTER__RELAY_ADDR: this.relayAddr,
      SFU_CLUSTER__SIGNAL_URL: this.httpUrl,
      SFU_CLUSTER__DRAIN_TIMEOUT_SECS: String(this.drainTimeoutSecs),
      ...this.extraEnv,
    };
  }

  /** Starts the node (again, after it ended: a new boot) and waits for /healthz. */
  async start({ timeoutMs = 20_000 } = {}) {
    if (this.running) throw new Error(`node ${this.id} is already running`);
    if (!existsSync(SFU_BIN)) throw new Error(`${SFU_BIN} not found: build it, or set E2E_SFU_BIN`);
    this.spawn('ip', ['netns', 'exec', this.namespace, SFU_BIN], this.env, `node ${this.id} (${this.nodeId}) at ${this.addr}`);
    await poll(async () => {
      if (!this.running) throw Object.assign(new Error(`node ${this.id} exited:\n${this.logTail()}`), { fatal: true });
      return (await this.get('/healthz')).status === 200;
    }, { timeoutMs, intervalMs: 100, what: `${this.httpUrl}/healthz` });
    return this;
  }

  /** GET `pathname` on the node with a short timeout: {status, body}. */
  async get(pathname, timeoutMs = 2000) {
    const res = await fetch(`${this.httpUrl}${pathname}`, { signal: AbortSignal.timeout(timeoutMs) });
    return { status: res.status, body: await res.text() };
  }

  /** /readyz as {status, body (parsed JSON)}. */
  async readyz() {
    const r = await this.get('/readyz');
    let body = null;
    try { body = JSON.parse(r.body); } catch {}
    return { status: r.status, body };
  }

  /** The sum of a metric's series whose labels include each of `labels`; 0 when absent. */
  metric(name, labels = []) {
    return metric(this.httpUrl, name, labels);
  }

  /** Relay media bytes between this node and `peer`, both ways (relay metrics name a peer by its node id). */
  relayBytesWith(peer) {
    return this.metric('sfu_relay_bytes_total', [`peer="${peer.nodeId}"`]);
  }

  /** Whether this node's control link to `peer` is up. */
  async linkedTo(peer) {
    return (await this.metric('sfu_relay_link_up', [`peer="${peer.nodeId}"`])) === 1;
  }

  /** A token from the node's dev endpoint (every node signs with the same dev key). */
  async token(room, identity) {
    const u = new URL('/dev/token', this.httpUrl);
    u.searchParams.set('room', room);
    u.searchParams.set('identity', identity);
    const res = await fetch(u, { signal: AbortSignal.timeout(5000) });
    if (res.status !== 200) throw new Error(`GET ${u}: HTTP ${res.status}`);
    return (await res.json()).token;
  }

  sigterm() { this.signal('SIGTERM'); }

  kill9() { this.signal('SIGKILL'); }
}

/**
 * The bridge, Redis and the nodes of one test file. `nodes`: name ('a', 'b', 'c') -> options of
 * ClusterNode (env, secret, drainTimeoutSecs). Nodes are started by start(), or later by the test.
 */
export class Cluster {
  constructor(name, nodes) {
    this.name = name;
    this.redisPidFile = `/tmp/sfu-e2e-redis-${ownNetns().replace(/\D/g, '')}.pid`;
    this.redis = new Redis(name, this.redisPidFile);
    this.nodes = Object.fromEntries(Object.entries(nodes).map(([id, opts]) => [id, new ClusterNode(name, id, opts)]));
    this._onExit = () => this.teardownSync();
  }

  /** Builds the network and starts Redis (not the nodes). */
  async setup() {
    assertIsolated();
    process.once('exit', this._onExit);
    removeLeftovers(this.redisPidFile);
    ip('link', 'add', BRIDGE, 'type', 'bridge');
    ip('addr', 'add', `${BRIDGE_ADDR}/24`, 'dev', BRIDGE);
    ip('link', 'set', BRIDGE, 'up');
    for (const node of Object.values(this.nodes)) node.plug();
    await this.redis.start();
    return this;
  }

  /** Starts `ids` (all nodes by default) and waits until each is linked to every other running one. */
  async start(ids = Object.keys(this.nodes)) {
    await Promise.all(ids.map((id) => this.nodes[id].start()));
    await this.waitLinked(ids);
  }

  /** Waits until each of `ids` has its control link to each other of `ids` up. */
  async waitLinked(ids, timeoutMs = 20_000) {
    const pairs = ids.flatMap((a) => ids.filter((b) => b !== a).map((b) => [a, b]));
    await poll(async () => {
      for (const [a, b] of pairs) if (!(await this.nodes[a].linkedTo(this.nodes[b]))) return false;
      return true;
    }, { timeoutMs, intervalMs: 250, what: `links between ${ids.join(', ')}` });
  }

  /** Secure origins for Chromium: pages on the nodes' plain-HTTP addresses may capture media. */
  get origins() {
    return Object.values(this.nodes).map((n) => n.httpUrl);
  }

  /** Kills every node and Redis, removes the namespaces and the bridge. */
  async teardown() {
    await Promise.all(Object.values(this.nodes).map((n) => n.kill()));
    await this.redis.stop();
    this.teardownSync();
    process.removeListener('exit', this._onExit);
  }

  /** What teardown does, synchronously (for an exiting process). */
  teardownSync() {
    for (const n of [...Object.values(this.nodes), this.redis]) {
      if (!n.running) continue;
      try { process.kill(n.pid, 'SIGCONT'); process.kill(n.pid, 'SIGKILL'); } catch {}
    }
    for (const n of Object.values(this.nodes)) n.unplug();
    try { ip('link', 'del', BRIDGE); } catch {}
    rmSync(this.redisPidFile, { force: true });
  }
}

/**
 * Registers before/after hooks for a cluster test file: the network and Redis, the nodes named in
 * `start` (default all) started and linked, and a Chromium in the suite namespace. Returns a
 * context filled in by the time the tests run: {cluster, nodes, redis, browser, page(node, label)}.
 */
export function useCluster(name, nodes, { start = Object.keys(nodes), browser = true } = {}) {
  const ctx = { cluster: new Cluster(name, nodes), browser: null };
  ctx.nodes = ctx.cluster.nodes;
  ctx.redis = ctx.cluster.redis;
  ctx.page = (node, label) => ctx.browser.openPage(ctx.nodes[node].httpUrl, label);
  before(async () => {
    await ctx.cluster.setup();
    await ctx.cluster.start(start);
    if (browser) {
      ctx.browser = await launchBrowser(name, {
        extraArgs: [`--unsafely-treat-insecure-origin-as-secure=${ctx.cluster.origins.join(',')}`],
      });
    }
  });
  after(async () => {
    await ctx.browser?.close();
    await ctx.cluster.teardown();
    console.log(`${name}: node logs ${LOG_DIR}/${name}.node-*.log`);
  });
  return ctx;
}

/** Whether the media checks run: on unless E2E_CLUSTER_MEDIA=0 (signaling alone, e.g. to tell a relay fault from a signaling one). */
export const CLUSTER_MEDIA = process.env.E2E_CLUSTER_MEDIA !== '0';

export { poll, sleep };
