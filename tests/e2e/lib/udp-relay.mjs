// A userspace UDP relay that loses packets (the kernel here has no tc netem). It listens on
// `listenHost` at each of the server's media ports; each client address gets its own socket
// towards `targetHost` at the same port, so the server sees one address per client and its
// replies find their way back. Client-to-server RTP is dropped with probability `loss`, decided
// by a seeded generator so runs repeat; STUN, DTLS and RTCP always pass.

import dgram from 'node:dgram';

const MAX_CLIENTS = 32;

/** mulberry32: a small seeded generator, uniform in [0, 1). */
function seeded(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** RTP, not RTCP (RFC 7983 first byte 128..191; RFC 5761: RTCP packet types 192..223). */
export function isRtp(datagram) {
  return datagram.length >= 12 && datagram[0] >= 128 && datagram[0] <= 191 && !(datagram[1] >= 192 && datagram[1] <= 223);
}

export class LossyRelay {
  constructor({ listenHost, targetHost, ports, loss, seed = 1 }) {
    Object.assign(this, { listenHost, targetHost, ports, loss });
    this.random = seeded(seed);
    this.listeners = [];
    this.clients = new Map(); // "port|address:port" -> socket towards the server
    this.counts = { up: 0, down: 0, rtp: 0, dropped: 0, refusedClients: 0 };
  }

  async start() {
    for (const port of this.ports) {
      const listener = dgram.createSocket('udp4');
      listener.on('message', (m, from) => this.fromClient(listener, port, m, from));
      await new Promise((resolve, reject) => {
        listener.once('error', reject);
        listener.bind(port, this.listenHost, resolve);
      });
      this.listeners.push(listener);
    }
    return this;
  }

  fromClient(listener, port, datagram, from) {
    const key = `${port}|${from.address}:${from.port}`;
    let upstream = this.clients.get(key);
    if (!upstream) {
      if (this.clients.size >= MAX_CLIENTS) {
        this.counts.refusedClients++;
        return;
      }
      upstream = dgram.createSocket('udp4');
      upstream.on('message', (m) => {
        this.counts.down++;
        listener.send(m, from.port, from.address);
      });
      upstream.on('error', () => {});
      upstream.bind(0, this.targetHost);
      this.clients.set(key, upstream);
    }
    if (isRtp(datagram)) {
      this.counts.rtp++;
      if (this.random() < this.loss) {
        this.counts.dropped++;
        return;
      }
    }
    this.counts.up++;
    upstream.send(datagram, port, this.targetHost);
  }

  close() {
    for (const s of [...this.listeners, ...this.clients.values()]) {
      try {
        s.close();
      } catch {}
    }
    this.listeners = [];
    this.clients.clear();
  }
}
