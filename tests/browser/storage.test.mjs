// Nothing lost: a full disk or a broken IndexedDB never ends a run and never spoils the last
// good save; two tabs keep their own runs; a lost GPU device restarts the engine with the last
// autosave offered.
import { test } from "node:test";
import assert from "node:assert/strict";
import { shared, useBrowser, openPage, prepare, setTraining, generate, history, SHOTS, URL_BASE } from "./helpers.mjs";

useBrowser();

const newContext = () => shared.browser.newContext({ viewport: { width: 1280, height: 900 } });
const done = (page) => page.waitForFunction(() => document.body.dataset.trainState === "done", null, { timeout: 300_000 });
const runs = (page) => page.evaluate(() => window.llmplay.call("list_runs"));
/** Trains to `steps`, with Start (or Resume, for a run brought back paused). */
async function train(page, steps, every, button = "#train-start") {
  await setTraining(page, { steps, every });
  // A run that finished before says "done" until the new one's first event: forget it first.
  await page.evaluate(() => { document.body.dataset.trainState = "starting"; });
  await page.click(button);
  await done(page);
}

test("a full disk: autosaves fail with a warning, training goes on, the last good save survives and resumes", async () => {
  const context = await newContext();
  const page = await openPage("?backend=cpu", context);
  await prepare(page);
  await train(page, 4, 4);
  assert.deepEqual((await runs(page)).map((r) => r.step), [4]);

  // The browser's real quota error: this origin may store nothing more. Chromium lets writes
  // through on space it found free in the last 30 s (BucketContext::kBucketSpaceCacheTimeLimit),
  // so the quota bites after that.
  const cdp = await context.newCDPSession(page);
  const origin = new URL(URL_BASE).origin;
  await cdp.send("Storage.overrideQuotaForOrigin", { origin, quotaSize: 1 });
  await new Promise((r) => setTimeout(r, 31_000));
  await train(page, 8, 4);
  assert.deepEqual((await history(page)).map((e) => e.step), [1, 2, 3, 4, 5, 6, 7, 8], "the run went on to the end");
  assert.match(await page.textContent("#save-status"), /autosave at step 8 failed: .*full \(quota exceeded\).*next autosave tries again/);
  assert.equal(await page.evaluate(() => document.body.dataset.trainState), "done");
  assert.deepEqual((await runs(page)).map((r) => r.step), [4], "the failed saves left the last good one as it was");
  await page.screenshot({ path: `${SHOTS}/12-quota.png`, fullPage: true });

  // A reload brings back the good save, which works.
  await page.reload();
  await page.waitForSelector("body[data-ready=true]");
  await page.waitForSelector("#resume:not([hidden])");
  assert.match(await page.textContent("#resume-text"), /saved at step 4/);
  await page.click("#resume-yes");
  await page.waitForFunction(() => window.llmplay.app.model?.step === 4);
  assert.ok((await generate(page)).length > 0);

  // Still full: the resumed run trains on and warns; with space again the next save works and
  // the warning goes.
  await train(page, 6, 2, "#train-resume");
  assert.match(await page.textContent("#save-status"), /autosave at step 6 failed/);
  await cdp.send("Storage.overrideQuotaForOrigin", { origin });
  await train(page, 8, 2);
  await page.waitForSelector("#save-status", { state: "hidden" });
  assert.deepEqual((await runs(page)).map((r) => r.step), [8]);
  assert.deepEqual(page.errors.filter((e) => !/quota|QuotaExceeded/i.test(e)), []);
  await context.close();
});

test("IndexedDB failing (as in some private windows): training goes on and says why nothing is saved", async () => {
  const page = await openPage("?backend=cpu");
  await prepare(page);
  // A newer version of the database, opened by someone else, makes every open by the page fail.
  await page.evaluate(() => new Promise((resolve, reject) => {
    const req = indexedDB.open("llmplay", 999);
    req.onsuccess = () => { req.result.close(); resolve(); };
    req.onerror = () => reject(req.error);
  }));
  await train(page, 6, 2);
  assert.equal((await history(page)).length, 6);
  assert.match(await page.textContent("#save-status"), /storage is not available/);
  await page.click("#prefs-examples");
  await page.waitForFunction(() => /200 judgements/.test(document.querySelector("#prefs-count").textContent));
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test("two tabs keep their own runs: neither overwrites the other's autosave, a reload finds its own", async () => {
  const context = await newContext();
  const first = await openPage("?backend=cpu", context);
  await prepare(first);
  await train(first, 8, 4);

  const second = await openPage("?backend=cpu", context);
  assert.equal(await second.isHidden("#resume"), true, "the first tab's run is not offered while it is open");
  const row = second.locator("#saved-runs tbody tr");
  await row.first().waitFor();
  assert.match(await row.first().textContent(), /step 8.*open in another tab/);
  assert.equal(await row.first().locator("button", { hasText: "Delete" }).isDisabled(), true);
  await prepare(second, { sample: "samples/tinyshakespeare.txt" });
  await train(second, 4, 2);

  const all = await runs(second);
  assert.deepEqual(all.map((r) => [r.corpus_name, r.step]).sort(), [["nursery-rhymes.txt", 8], ["tinyshakespeare.txt", 4]]);
  assert.ok(all.every((r) => r.bytes > 0));
  await second.waitForFunction(() => document.querySelector("#saved-usage").dataset.runs === "2");
  assert.match(await second.textContent("#saved-usage"), /2 saved runs use .*(KiB|MiB)/);
  await second.screenshot({ path: `${SHOTS}/13-two-tabs.png`, fullPage: true });

  // Each tab's reload offers its own run, under the same id.
  const ids = async () => [await first.evaluate(() => sessionStorage.getItem("llmplay-run")), await second.evaluate(() => sessionStorage.getItem("llmplay-run"))];
  const before = await ids();
  assert.notEqual(before[0], before[1]);
  await first.reload();
  await first.waitForSelector("#resume:not([hidden])");
  assert.match(await first.textContent("#resume-text"), /nursery-rhymes\.txt was saved at step 8/);
  await second.reload();
  await second.waitForSelector("#resume:not([hidden])");
  assert.match(await second.textContent("#resume-text"), /tinyshakespeare\.txt was saved at step 4/);
  assert.deepEqual(await ids(), before);

  // Once the first tab is closed, the second may take its run.
  await first.close();
  const theirs = second.locator("#saved-runs tbody tr", { hasText: "nursery-rhymes.txt" });
  // The list is refreshed when the tab gets the focus (the closed tab's lock goes a moment later).
  await second.waitForFunction(() => {
    window.dispatchEvent(new Event("focus"));
    return [...document.querySelectorAll("#saved-runs tbody tr")].some((r) => /nursery/.test(r.textContent) && !/another tab/.test(r.textContent));
  }, null, { polling: 500 });
  await theirs.locator("button", { hasText: "Resume" }).click();
  await second.waitForFunction(() => window.llmplay.app.model?.step === 8 && document.body.dataset.trainState === "paused");
  // ... and delete its own old one.
  const mine = second.locator("#saved-runs tbody tr", { hasText: "tinyshakespeare.txt" });
  await mine.locator("button", { hasText: "Delete" }).click();
  await mine.locator("button", { hasText: "Delete it?" }).click();
  await second.waitForFunction(() => document.querySelector("#saved-usage").dataset.runs === "1");
  assert.deepEqual((await runs(second)).map((r) => r.step), [8]);
  assert.deepEqual(second.errors, []);
  await context.close();
});

test("a new model is a new saved run: the one before it stays, and can be resumed", async () => {
  const page = await openPage("?backend=cpu");
  await prepare(page);
  await train(page, 2, 2);
  await page.click("#model-create");
  await page.waitForFunction(() => document.querySelector("#model-info").textContent.includes("untrained"));
  await train(page, 3, 3);
  assert.deepEqual((await runs(page)).map((r) => r.step), [3, 2]);
  await page.locator("#saved-runs tbody tr", { hasText: "step 2" }).locator("button", { hasText: "Resume" }).click();
  await page.waitForFunction(() => window.llmplay.app.model?.step === 2 && document.body.dataset.trainState === "paused");
  // After a reload, "Not now" keeps the run: it can still be resumed from the list.
  await page.reload();
  await page.waitForSelector("#resume:not([hidden])");
  assert.match(await page.textContent("#resume-text"), /saved at step 2 .*finished\. Open it again\?/);
  await page.click("#resume-no");
  const own = page.locator("#saved-runs tbody tr", { hasText: "this tab" });
  await own.locator("button:not([disabled])", { hasText: "Resume" }).click();
  await page.waitForFunction(() => window.llmplay.app.model?.step === 2);
  assert.deepEqual((await runs(page)).map((r) => r.step), [3, 2], "nothing was deleted");
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test("Web Locks refused (as with site data blocked): the page still starts, trains and saves", async () => {
  const context = await newContext();
  await context.addInitScript(() => {
    if (navigator.locks) {
      navigator.locks.request = () => Promise.reject(new DOMException("The request was denied.", "SecurityError"));
      navigator.locks.query = () => Promise.reject(new DOMException("The request was denied.", "SecurityError"));
    }
  });
  const page = await openPage("?backend=cpu", context);
  await prepare(page);
  await train(page, 2, 2);
  assert.deepEqual((await runs(page)).map((r) => r.step), [2]);
  assert.deepEqual(page.errors, []);
  await context.close();
});

test("a WebGPU device lost mid-training restarts the engine on a new device and offers the last autosave", async () => {
  const page = await openPage("?backend=webgpu");
  assert.match(await page.textContent("#backend"), /WebGPU/);
  await prepare(page);
  await train(page, 2, 2);
  await setTraining(page, { steps: 200, every: 100 });
  await page.click("#train-start");
  await page.waitForFunction(() => window.llmplay.app.history.length >= 3, null, { timeout: 120_000 });
  assert.equal(await page.evaluate(() => window.llmplay.call("simulate_device_loss")), true);
  await page.waitForFunction(() => /GPU device was lost \(destroyed\)/.test(document.querySelector("#toast").textContent), null, { timeout: 60_000 });
  await page.waitForSelector("#resume:not([hidden])", { timeout: 120_000 });
  assert.match(await page.textContent("#resume-text"), /saved at step 2 /);
  assert.match(await page.textContent("#backend"), /WebGPU/, "the new engine is on a new GPU device");
  await page.click("#resume-yes");
  await page.waitForFunction(() => window.llmplay.app.model?.step === 2, null, { timeout: 120_000 });
  assert.ok((await generate(page, { tokens: 8 })).length > 0, "the restored model generates on the new device");
  // Chromium reports the destroyed device's failed calls on the console; nothing else may appear.
  assert.deepEqual(page.errors.filter((e) => !/lost|destroyed|GPUDevice|invalid|mapAsync|WebGPU/i.test(e)), []);
  await page.context().close();
});
