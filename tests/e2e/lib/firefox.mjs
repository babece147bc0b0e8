// Headless Firefox for the e2e tests: Debian's firefox-esr (no browser download), driven by
// puppeteer-core over WebDriver BiDi, with a fresh profile, a fake camera and microphone, and the
// prefs that let it gather loopback ICE candidates. Pages get the same in-page helpers (`window.T`)
// as the Chromium pages (see browser.mjs).

import puppeteer from 'puppeteer-core';
import { mkdtempSync, rmSync, mkdirSync, createWriteStream, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { LOG_DIR } from './server.mjs';
import { preparePage } from './browser.mjs';

export const FIREFOX_PATH = process.env.FIREFOX_PATH ?? '/usr/bin/firefox-esr';
const INPAGE_SOURCE = readFileSync(path.join(path.dirname(fileURLToPath(import.meta.url)), 'inpage.js'), 'utf8');

export const FIREFOX_PREFS = {
  // ICE: host candidates on 127.0.0.1, and not hidden behind mDNS names.
  'media.peerconnection.ice.loopback': true,
  'media.peerconnection.ice.obfuscate_host_addresses': false,
  // Fake camera and microphone, no permission prompt, media plays without a gesture.
  'media.navigator.streams.fake': true,
  'media.navigator.permission.disabled': true,
  'media.autoplay.default': 0,
  'media.autoplay.blocking_policy': 0,
  // Every page here is in the background: do not throttle its timers.
  'dom.timeout.enable_budget_timer_throttling': false,
  'dom.min_background_timeout_value': 4,
  // Nothing but loopback: the browser's own services (remote settings, experiments, telemetry,
  // connectivity checks) stay off, and any other HTTP(S) request goes to a proxy on the discard
  // port, which refuses it without a DNS lookup. Loopback is never proxied; ICE does not use it.
  'network.proxy.type': 1,
  'network.proxy.http': '127.0.0.1',
  'network.proxy.http_port': 9,
  'network.proxy.ssl': '127.0.0.1',
  'network.proxy.ssl_port': 9,
  'network.proxy.no_proxies_on': '127.0.0.1,localhost,[::1]',
  'network.dns.disablePrefetch': true,
  'network.captive-portal-service.enabled': false,
  'network.connectivity-service.enabled': false,
  'messaging-system.rsexperimentloader.enabled': false,
  'app.normandy.enabled': false,
  'toolkit.telemetry.enabled': false,
  'browser.region.network.url': '',
};

/**
 * Firefox gathers no ICE candidates without a default route, and a namespace with only `lo` has
 * none: give it one through `lo`. Only inside a network namespace of our own (never the machine's),
 * and only when there is no default route yet. Returns a function that undoes it.
 */
export function ensureLoopbackDefaultRoute() {
  const own = (p) => {
    try {
      return execFileSync('readlink', [p], { encoding: 'utf8' }).trim();
    } catch {
      return null;
    }
  };
  const mine = own('/proc/self/ns/net');
  if (!mine || mine === own('/proc/1/ns/net')) return () => {};
  const routes = execFileSync('ip', ['route', 'show', 'default'], { encoding: 'utf8' }).trim();
  if (routes) return () => {};
  execFileSync('ip', ['route', 'add', 'default', 'dev', 'lo', 'src', '127.0.0.1']);
  return () => {
    try {
      execFileSync('ip', ['route', 'del', 'default', 'dev', 'lo']);
    } catch {}
  };
}

export class FirefoxBrowser {
  constructor(name, { executablePath = FIREFOX_PATH, prefs = {} } = {}) {
    this.name = name;
    this.executablePath = executablePath;
    this.prefs = prefs;
    this.browser = null;
    this.profileDir = null;
    mkdirSync(LOG_DIR, { recursive: true });
    this.logFile = path.join(LOG_DIR, `${name}.firefox.log`);
    this.log = createWriteStream(this.logFile, { flags: 'w' });
  }

  async launch() {
    this.profileDir = mkdtempSync(path.join(tmpdir(), 'sfu-e2e-firefox-'));
    this.browser = await puppeteer.launch({
      browser: 'firefox',
      executablePath: this.executablePath,
      headless: true,
      userDataDir: this.profileDir,
      extraPrefsFirefox: { ...FIREFOX_PREFS, ...this.prefs },
      defaultViewport: { width: 1280, height: 800 },
      timeout: 90_000,
      protocolTimeout: 120_000,
      dumpio: false,
    });
    const proc = this.browser.process();
    proc?.stderr?.on('data', (d) => this.log.write(d));
    proc?.stdout?.on('data', (d) => this.log.write(d));
    return this;
  }

  /** Like TestBrowser.openPage: `baseUrl`/ with `window.T` installed and `window.sdk` imported. */
  async openPage(baseUrl, label = 'page') {
    const page = await this.browser.newPage();
    return preparePage(page, this.log, label, baseUrl, () => page.evaluateOnNewDocument(INPAGE_SOURCE));
  }

  async close() {
    try {
      await this.browser?.close();
    } catch {}
    this.log.end();
    if (this.profileDir) rmSync(this.profileDir, { recursive: true, force: true });
  }
}

export async function launchFirefox(name, options) {
  const b = new FirefoxBrowser(name, options);
  await b.launch();
  return b;
}
