// A hand-made TURN client over UDP (RFC 8656 / 8489 framing, long-term credentials), enough to
// check what a server answers: Allocate and CreatePermission, with or without credentials.

import dgram from 'node:dgram';
import { createHash, createHmac, randomBytes } from 'node:crypto';

const COOKIE = 0x2112a442;
export const ALLOCATE = 0x0003;
export const CREATE_PERMISSION = 0x0008;
const ATTR = { USERNAME: 0x0006, MESSAGE_INTEGRITY: 0x0008, ERROR_CODE: 0x0009, XOR_PEER_ADDRESS: 0x0012, REALM: 0x0014,
  NONCE: 0x0015, XOR_RELAYED_ADDRESS: 0x0016, REQUESTED_TRANSPORT: 0x0019 };

/** A TURN REST credential: username `<expiry>:<identity>`, password base64(HMAC-SHA1(secret, username)). */
export function restCredential(secret, identity, expiryUnix) {
  const username = `${expiryUnix}:${identity}`;
  return { username, password: createHmac('sha1', secret).update(username).digest('base64') };
}

function attr(type, value) {
  const head = Buffer.alloc(4);
  head.writeUInt16BE(type, 0);
  head.writeUInt16BE(value.length, 2);
  return Buffer.concat([head, value, Buffer.alloc((4 - (value.length % 4)) % 4)]);
}

function xorAddress(ip, port) {
  const v = Buffer.alloc(8);
  v[1] = 0x01;
  v.writeUInt16BE(port ^ (COOKIE >>> 16), 2);
  const n = ip.split('.').reduce((a, o) => (a << 8) + Number(o), 0) >>> 0;
  v.writeUInt32BE((n ^ COOKIE) >>> 0, 4);
  return v;
}

/**
 * A request of `method` with `attrs` ([type, Buffer]...), signed when `auth` ({username,
 * password, realm, nonce}) is given.
 */
export function request(method, attrs, auth) {
  const tid = randomBytes(12);
  let body = Buffer.concat(attrs.map(([t, v]) => attr(t, v)));
  if (auth) {
    body = Buffer.concat([body, attr(ATTR.USERNAME, Buffer.from(auth.username)), attr(ATTR.REALM, Buffer.from(auth.realm)),
      attr(ATTR.NONCE, Buffer.from(auth.nonce))]);
  }
  const header = (length) => {
    const h = Buffer.alloc(20);
    h.writeUInt16BE(method, 0);
    h.writeUInt16BE(length, 2);
    h.writeUInt32BE(COOKIE, 4);
    tid.copy(h, 8);
    return h;
  };
  if (!auth) return { tid, bytes: Buffer.concat([header(body.length), body]) };
  const key = createHash('md5').update(`${auth.username}:${auth.realm}:${auth.password}`).digest();
  const mac = createHmac('sha1', key).update(Buffer.concat([header(body.length + 24), body])).digest();
  body = Buffer.concat([body, attr(ATTR.MESSAGE_INTEGRITY, mac)]);
  return { tid, bytes: Buffer.concat([header(body.length), body]) };
}

/** An Allocate for a UDP relay. */
export const allocate = (auth) => request(ALLOCATE, [[ATTR.REQUESTED_TRANSPORT, Buffer.from([17, 0, 0, 0])]], auth);
/** A CreatePermission for `ip`:`port`. */
export const createPermission = (ip, port, auth) => request(CREATE_PERMISSION, [[ATTR.XOR_PEER_ADDRESS, xorAddress(ip, port)]], auth);

/** A response as read: {type, error, realm, nonce, relayed}. */
export function parse(msg) {
  const out = { type: msg.readUInt16BE(0), tid: msg.subarray(8, 20), error: null, realm: null, nonce: null, relayed: null };
  for (let i = 20; i + 4 <= msg.length;) {
    const type = msg.readUInt16BE(i);
    const len = msg.readUInt16BE(i + 2);
    const v = msg.subarray(i + 4, i + 4 + len);
    if (type === ATTR.ERROR_CODE) out.error = (v[2] & 7) * 100 + v[3];
    if (type === ATTR.REALM) out.realm = v.toString();
    if (type === ATTR.NONCE) out.nonce = v.toString();
    if (type === ATTR.XOR_RELAYED_ADDRESS) {
      const port = v.readUInt16BE(2) ^ (COOKIE >>> 16);
      const n = (v.readUInt32BE(4) ^ COOKIE) >>> 0;
      out.relayed = `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}:${port}`;
    }
    i += 4 + len + ((4 - (len % 4)) % 4);
  }
  return out;
}

/** A UDP TURN client of the server at 127.0.0.1:`port`. */
export class UdpTurnClient {
  constructor(port) {
    this.port = port;
    this.socket = dgram.createSocket('udp4');
    this.inbox = [];
    this.waiters = [];
    this.socket.on('message', (m) => {
      const w = this.waiters.shift();
      if (w) w(m); else this.inbox.push(m);
    });
  }

  /** Sends `req` ({tid, bytes}) and resolves with the parsed response to it (null after 3 s). */
  async ask(req) {
    this.socket.send(req.bytes, this.port, '127.0.0.1');
    const deadline = Date.now() + 3000;
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0) return null;
      const m = this.inbox.shift() ?? await new Promise((resolve) => {
        const waiter = (msg) => { clearTimeout(timer); resolve(msg); };
        const timer = setTimeout(() => {
          this.waiters = this.waiters.filter((w) => w !== waiter);
          resolve(null);
        }, left);
        this.waiters.push(waiter);
      });
      if (!m) return null;
      const r = parse(m);
      if (r.tid.equals(req.tid)) return r;
    }
  }

  send(bytes) {
    this.socket.send(bytes, this.port, '127.0.0.1');
  }

  close() {
    this.socket.close();
  }
}
