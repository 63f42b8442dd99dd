// The page for the benchmarks: www/ and an engine build (pkg/, or the folder `pkgDir()` names at
// the time of each request, so one run can time several builds) on a free local port.
import { createServer } from "node:http";
import { readFile } from "node:fs/promises";
import { extname, join } from "node:path";

const types = { ".html": "text/html", ".js": "text/javascript", ".wasm": "application/wasm", ".css": "text/css", ".txt": "text/plain" };

/** Starts the server; returns its base URL and the server (to close). */
export async function serve(pkgDir = () => "pkg") {
  const server = createServer(async (req, res) => {
    const path = decodeURIComponent(new URL(req.url, "http://x").pathname);
    const file = path === "/" ? "www/index.html" : path.startsWith("/pkg/") ? join(pkgDir(), path.slice(5)) : "www" + path;
    try {
      const body = await readFile(file);
      res.writeHead(200, { "content-type": types[extname(file)] || "application/octet-stream" }).end(body);
    } catch {
      res.writeHead(404).end();
    }
  }).listen(0, "127.0.0.1");
  await new Promise((r) => server.once("listening", r));
  return { base: `http://127.0.0.1:${server.address().port}/`, server };
}
