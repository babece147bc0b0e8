// The demo page: two people join through the form; each sees the other's tile with its name and
// live stats; the quality menu works; leaving removes the tile on the other side.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useServerAndBrowser } from './lib/harness.mjs';
import { poll } from './lib/server.mjs';

const ctx = useServerAndBrowser('i-demo-page', 9);

async function joinViaForm(name) {
  const page = await ctx.browser.context.newPage();
  await page.goto(`${ctx.server.httpUrl}/?room=demo-test&name=${name}`);
  await page.click('button[type=submit]');
  await poll(() => page.evaluate(() => document.querySelector('#status').dataset.state === 'connected'),
    { timeoutMs: 20_000, what: `${name}: status connected` });
  return page;
}

test('demo page: join, see each other, change quality, leave', { timeout: 180_000 }, async () => {
  const alice = await joinViaForm('alice');
  const bob = await joinViaForm('bob');
  for (const [page, other] of [[alice, 'bob'], [bob, 'alice']]) {
    const text = await poll(() => page.evaluate(() => {
      const tile = document.querySelector('.tile:not(.local)');
      const stats = tile?.querySelector('.stats').textContent ?? '';
      return /^\d+x\d+/.test(stats) && { name: tile.querySelector('.name').textContent, stats };
    }), { timeoutMs: 45_000, what: `remote tile of ${other} with stats` });
    assert.equal(text.name, other);
    assert.equal(await page.evaluate(() => document.querySelector('#join-form').hidden), true);
  }
  await bob.selectOption('.tile:not(.local) .quality', 'low');
  await poll(() => bob.evaluate(() => /^320x180/.test(document.querySelector('.tile:not(.local) .stats').textContent)),
    { timeoutMs: 25_000, what: 'bob sees alice at 320x180 after choosing low' });

  await alice.click('#leave');
  await poll(() => bob.evaluate(() => document.querySelectorAll('.tile:not(.local)').length === 0),
    { timeoutMs: 15_000, what: 'alice\'s tile removed on bob\'s page' });
  assert.equal(await alice.evaluate(() => document.querySelector('#join-form').hidden), false);
});
