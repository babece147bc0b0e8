// Headless Chromium for the e2e tests, driven by playwright-core (no browser download: Debian's
// /usr/bin/chromium). Flags as in the project's testing notes; fake camera and microphone.

import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync, mkdirSync, createWriteStream, chownSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { LOG_DIR } from './server.mjs';

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const INPAGE_SCRIPT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'inpage.js');

// --user-data-dir is passed as launchPersistentContext's first argument (a fresh directory).
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
  '--allow-loopback-in-peer-connection',
  // Pages in background tabs must not be throttled: every page here is "in the background".
  '--disable-background-timer-throttling',
  '--disable-renderer-backgrounding',
  '--disable-backgrounding-occluded-windows',
  '--autoplay-policy=no-user-gesture-required',
];

export class TestBrowser {
  /**
   * `executablePath` and `extraArgs` let a test run Chromium elsewhere (see netns.mjs), `owner`
   * ({uid, gid}) as another user (see noudp.mjs): its profile directory, also its HOME, is
   * given to that user.
   */
  constructor(name, { executablePath = CHROMIUM_PATH, extraArgs = [], owner = null } = {}) {
    this.name = name;
    this.executablePath = executablePath;
    this.extraArgs = extraArgs;
    this.owner = owner;
    this.context = null;
    this.userDataDir = null;
    mkdirSync(LOG_DIR, { recursive: true });
    this.logFile = path.join(LOG_DIR, `${name}.browser.log`);
    this.log = createWriteStream(this.logFile, { flags: 'w' });
  }

  async launch() {
    this.userDataDir = mkdtempSync(path.join(tmpdir(), 'sfu-e2e-chromium-'));
    if (this.owner) chownSync(this.userDataDir, this.owner.uid, this.owner.gid);
    this.context = await chromium.launchPersistentContext(this.userDataDir, {
      executablePath: this.executablePath,
      ...(this.owner ? { env: { ...process.env, HOME: this.userDataDir } } : {}),
      headless: true,
      args: [...CHROMIUM_ARGS, ...this.extraArgs],
      viewport: { width: 1280, height: 800 },
      timeout: 60_000,
    });
    // A persistent context opens with one blank page; it is not used.
    return this;
  }

  /**
   * Opens `baseUrl`/ in a new page with the in-page helpers (`window.T`) installed and the SDK
   * imported (`window.sdk`). Console output goes to the browser log, prefixed with `label`.
   */
  async openPage(baseUrl, label = 'page') {
    const page = await this.context.newPage();
    return preparePage(page, this.log, label, baseUrl, () => page.addInitScript({ path: INPAGE_SCRIPT }));
  }

  async close() {
    try {
      await this.context?.close();
    } catch {}
    this.log.end();
    if (this.userDataDir) rmSync(this.userDataDir, { recursive: true, force: true });
  }
}

/**
 * What every test page gets, whichever browser drives it: console output in `log` prefixed with
 * `label`, a 60 s default timeout, the in-page helpers (`installHelpers` adds them before any
 * page script runs), `baseUrl`/ loaded and the SDK imported as `window.sdk`.
 */
export async function preparePage(page, log, label, baseUrl, installHelpers) {
  page.on('console', (m) => log.write(`${new Date().toISOString()} [${label}] ${m.type()}: ${m.text()}\n`));
  page.on('pageerror', (e) => log.write(`${new Date().toISOString()} [${label}] pageerror: ${e.message}\n`));
  page.setDefaultTimeout(60_000);
  await installHelpers();
  await page.goto(`${baseUrl}/`, { waitUntil: 'load' });
  await page.evaluate(async () => {
    window.sdk = await import('/sdk.js');
  });
  return page;
}

export async function launchBrowser(name, options) {
  const b = new TestBrowser(name, options);
  await b.launch();
  return b;
}
