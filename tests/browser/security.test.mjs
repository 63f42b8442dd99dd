// Whatever arrives from outside is shown as text and never runs: a shared ?model= link, a
// bundle's file name, metadata and tokenizer, a corpus file's name. The Content-Security-Policy
// is in force as a second line of defence.
import { test } from "node:test";
import assert from "node:assert/strict";
import { useBrowser, shared, openPage, prepare, setTraining, generate, SHOTS } from "./helpers.mjs";

useBrowser();

const XSS = `"><img src=x onerror="window.__pwned=1;alert(1)"><script>window.__pwned=2</script>`;
// File names cannot hold a slash.
const XSS_NAME = `"><img src=x onerror="window.__pwned=4;alert(4)"><svg onload="alert(5)">`;

/** A page that records dialogs and CSP violations, so a test can prove nothing ran. */
async function watchedPage(query, context) {
  context = context || (await shared.browser.newContext({ viewport: { width: 1280, height: 900 } }));
  await context.addInitScript(() => {
    window.__violations = [];
    document.addEventListener("securitypolicyviolation", (e) => window.__violations.push(`${e.violatedDirective}: ${e.sample || e.blockedURI}`));
  });
  context.dialogs = [];
  context.on("page", (p) => p.on("dialog", (d) => { context.dialogs.push(d.message()); d.dismiss().catch(() => {}); }));
  return openPage(query, context);
}

async function nothingRan(page) {
  const seen = await page.evaluate(() => ({
    pwned: window.__pwned ?? null,
    images: document.querySelectorAll("img").length,
    handlers: document.querySelectorAll("[onerror], [onload], [onclick]").length,
    scripts: [...document.scripts].map((s) => s.getAttribute("src")),
    violations: window.__violations,
  }));
  assert.deepEqual(seen, { pwned: null, images: 0, handlers: 0, scripts: ["./app/main.js"], violations: [] });
  assert.deepEqual(page.context().dialogs, []);
}

/** A one-file bundle with its safetensors metadata rewritten by `edit(metadata)`. */
function craft(bundle, edit) {
  const n = Number(bundle.readBigUInt64LE(0));
  const header = JSON.parse(bundle.subarray(8, 8 + n).toString("utf8"));
  edit(header.__metadata__);
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  return Buffer.concat([len, Buffer.from(json, "utf8"), bundle.subarray(8 + n)]);
}

/** Markup in the corpus name, and in place of every lowercase letter in the vocabulary. */
function poisoned(meta) {
  const m = JSON.parse(meta["llmplay.json"]);
  m.corpus_name = `rhymes ${XSS}`;
  meta["llmplay.json"] = JSON.stringify(m);
  const tok = JSON.parse(meta["tokenizer.json"]);
  const vocab = {};
  for (const [piece, id] of Object.entries(tok.model.vocab)) vocab[/^[a-z]$/.test(piece) ? `<img src=x onerror="window.__pwned=${id}">` : piece] = id;
  tok.model.vocab = vocab;
  meta["tokenizer.json"] = JSON.stringify(tok);
}

test("markup in a shared link, a bundle's name, metadata and tokens, or a corpus file name is shown as text and never runs", async () => {
  // A small trained bundle to poison.
  const maker = await openPage("?backend=cpu");
  await prepare(maker);
  await setTraining(maker, { steps: 3 });
  await maker.click("#train-start");
  await maker.waitForFunction(() => document.body.dataset.trainState === "done", null, { timeout: 120_000 });
  const good = Buffer.from(await maker.evaluate(async () => Array.from(await window.llmplay.call("export_bundle"))));
  await maker.context().close();
  const evil = craft(good, poisoned);

  const page = await watchedPage("?backend=cpu");
  // The CSP is in force: an inline script put into the page does not run.
  await page.evaluate(() => { const s = document.createElement("script"); s.textContent = "window.__pwned = 'inline'"; document.body.append(s); s.remove(); });
  assert.equal(await page.evaluate(() => window.__pwned ?? null), null, "the CSP blocks inline scripts");
  assert.match(page.errors.join("\n"), /violates the following Content Security Policy directive 'script-src 'self'/);
  page.errors.length = 0;
  await page.evaluate(() => { window.__violations = []; });
  // Links are made only for http(s) URLs.
  assert.deepEqual(await page.evaluate(async () => {
    const { safeHref } = await import("./dom.js");
    return ["javascript:alert(1)", "data:text/html,<script>alert(1)</script>", " JavaScript:alert(1)", "https://example.org/m"].map(safeHref);
  }), ["#", "#", "#", "https://example.org/m"]);

  // A corpus file named with markup.
  await page.setInputFiles("#corpus-file", { name: `${XSS_NAME}.txt`, mimeType: "text/plain", buffer: Buffer.from("Mary had a little lamb.\n".repeat(200)) });
  await page.waitForSelector("#corpus-info:not([hidden])");
  assert.ok((await page.textContent("#corpus-stats")).includes(`${XSS_NAME}.txt`), "the name is shown, as text");

  // The poisoned bundle by file: its name, corpus name and tokens are text.
  await page.setInputFiles("#bundle-file", { name: `${XSS_NAME}.safetensors`, mimeType: "application/octet-stream", buffer: evil });
  await page.waitForFunction(() => document.querySelector("#model-info").textContent.includes("pretrained 3 steps"));
  assert.ok((await page.textContent("#share-link")).includes(`${XSS_NAME}.safetensors`));
  const text = await generate(page, { prompt: "", tokens: 40 });
  assert.match(text, /<img src=x onerror=/, "the poisoned tokens are generated, and shown as text");
  assert.ok((await page.textContent("#gen-output")).includes("<img src=x"));
  await page.click("#gen-output .tok");
  await page.waitForSelector("#probs:not([hidden])");

  // The same bundle loaded to compare: its corpus name labels the chat picker and report card.
  await page.setInputFiles("#chat-load-file", { name: `${XSS_NAME}.safetensors`, mimeType: "application/octet-stream", buffer: evil });
  await page.waitForFunction(() => [...document.querySelectorAll("#chat-model-b option")].some((o) => o.textContent.includes("<img")));
  await page.fill("#rl-card-n", "1");
  await page.click("#rl-card");
  await page.waitForFunction(() => /click a cell/.test(document.querySelector("#rl-card-status").textContent), null, { timeout: 120_000 });
  assert.ok((await page.textContent("#rl-card-table thead")).includes("<img src=x"));
  await page.fill("#chat-input", "hello");
  await page.click("#chat-send");
  await page.waitForFunction(() => document.querySelectorAll("#chat-log-b .msg.assistant .rate").length === 1, null, { timeout: 120_000 });

  // A bundle whose stage is markup is refused, and the message is text.
  const badStage = craft(good, (meta) => { meta["llmplay.json"] = JSON.stringify({ ...JSON.parse(meta["llmplay.json"]), stage: XSS }); });
  await page.setInputFiles("#bundle-file", { name: "stage.safetensors", mimeType: "application/octet-stream", buffer: badStage });
  await page.waitForSelector("#bundle-error:not([hidden])");
  assert.match(await page.textContent("#bundle-error"), /stage\.safetensors: .*stage.*unchanged/);
  await page.screenshot({ path: `${SHOTS}/11-untrusted.png`, fullPage: true });
  await nothingRan(page);
  assert.deepEqual(page.errors, []);
  await page.context().close();

  // The same bundle behind a shared link whose URL carries markup.
  const name = `<img src=x onerror="window.__pwned=3">.safetensors`;
  const link = `https://models.example/models/${name}?x=${XSS}`;
  const context = await shared.browser.newContext({ viewport: { width: 390, height: 844 } });
  await context.route("https://models.example/**", (route) => route.fulfill({ status: 200, body: evil, headers: { "content-type": "application/octet-stream", "access-control-allow-origin": "*" } }));
  const linked = await watchedPage("?backend=cpu&model=" + encodeURIComponent(link), context);
  await linked.waitForFunction(() => document.querySelector("#model-info").textContent.includes("pretrained 3 steps"), null, { timeout: 60_000 });
  const share = await linked.textContent("#share-link");
  assert.ok(share.startsWith(`Loaded ${name}: pretrained 3 steps.`), share);
  const href = await linked.getAttribute("#share-link a", "href");
  assert.match(href, /^http:\/\/127\.0\.0\.1:\d+\/\?backend=cpu&model=https%3A%2F%2Fmodels\.example/);
  assert.ok((await generate(linked, { prompt: "", tokens: 40 })).includes("<img"));
  const wide = await linked.evaluate(() => [...document.querySelectorAll("body *")].filter((e) => e.getBoundingClientRect().right > 391).map((e) => `${e.tagName.toLowerCase()}#${e.id}.${e.className}`));
  assert.deepEqual(wide, [], "nothing is wider than a phone (long names and links wrap)");
  await linked.screenshot({ path: `${SHOTS}/11-untrusted-link-390.png`, fullPage: true });
  await nothingRan(linked);
  assert.deepEqual(linked.errors, []);
  await context.close();
});
