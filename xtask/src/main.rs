//! `cargo xtask serve [--port N]` builds the wasm package and serves the playground;
//! `cargo xtask test` runs every test. Both install what they need on a fresh machine.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(),
        Some("serve") => {
            let port = match args.iter().position(|a| a == "--port") {
                Some(i) => args.get(i + 1).and_then(|p| p.parse().ok()).ok_or("--port needs a number".to_string()),
                None => Ok(8080),
            };
            port.and_then(serve)
        }
        Some("build-web") => build_web_profile(if args.iter().any(|a| a == "--dev") { "wasm-dev" } else { "wasm-release" }).map(|_| ()),
        Some("test-browser") => browser_tests(),
        _ => Err("usage: cargo xtask test | cargo xtask serve [--port N] | cargo xtask build-web [--dev] | cargo xtask test-browser".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The repository root. `cargo run` sets CARGO_MANIFEST_DIR at run time too; prefer that, since
/// one shared target dir may hold an xtask binary built from another clone.
fn root() -> PathBuf {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_string());
    Path::new(&manifest).parent().expect("xtask lives in the repo").to_path_buf()
}

fn run(cmd: &mut Command) -> Result<(), String> {
    eprintln!("xtask: running {:?}", cmd);
    let status = cmd.current_dir(root()).status().map_err(|e| format!("could not start {:?}: {e}", cmd.get_program()))?;
    if status.success() { Ok(()) } else { Err(format!("{:?} failed ({status})", cmd.get_program())) }
}

fn output(cmd: &mut Command) -> Option<String> {
    let out = cmd.current_dir(root()).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

/// Debian packages are installed only when a command or file they provide is missing.
fn apt_install(packages: &[&str]) -> Result<(), String> {
    run(Command::new("apt-get").args(["update", "-qq"]))?;
    run(Command::new("apt-get").args(["install", "-y", "-qq", "--no-install-recommends"]).args(packages).env("DEBIAN_FRONTEND", "noninteractive"))
}

fn ensure_wasm_target() -> Result<(), String> {
    let installed = output(Command::new("rustup").args(["target", "list", "--installed"])).unwrap_or_default();
    if !installed.lines().any(|l| l.trim() == "wasm32-unknown-unknown") {
        run(Command::new("rustup").args(["target", "add", "wasm32-unknown-unknown"]))?;
    }
    Ok(())
}

/// Lavapipe (Mesa's CPU Vulkan driver) lets the native wgpu backend run without a GPU.
fn ensure_lavapipe() -> Result<(), String> {
    let icd = Path::new("/usr/share/vulkan/icd.d");
    let has_lvp = std::fs::read_dir(icd).map(|d| d.flatten().any(|e| e.file_name().to_string_lossy().contains("lvp"))).unwrap_or(false);
    if !has_lvp {
        apt_install(&["mesa-vulkan-drivers", "libvulkan1"])?;
    }
    Ok(())
}

/// Python with numpy, safetensors and tokenizers: the independent reference the compatibility
/// tests compare against (no PyTorch needed).
fn ensure_python_reference() -> Result<(), String> {
    let ok = Command::new("python3").args(["-c", "import numpy, safetensors, tokenizers"]).status().map(|s| s.success()).unwrap_or(false);
    if !ok {
        run(Command::new("python3").args(["-m", "pip", "install", "-q", "numpy", "safetensors", "tokenizers"]))?;
    }
    Ok(())
}

fn test() -> Result<(), String> {
    ensure_wasm_target()?;
    ensure_python_reference()?;
    // The native build of the tests and the page's wasm build run side by side: each has long
    // single-threaded stretches (linking, LTO, wasm-opt, installing wasm-bindgen) that leave the
    // other core idle. Their profiles live in separate directories, so cargo's locks allow it.
    eprintln!("xtask: building the native tests and the wasm engine in parallel");
    let mut native = cargo()
        .args(["test", "--release", "--package", "llmplay", "--no-run", "--quiet"])
        .current_dir(root())
        .spawn()
        .map_err(|e| format!("could not start cargo: {e}"))?;
    // The page's build: the core must keep compiling for the browser (BPE training included:
    // no threads there), and the browser tests below use it.
    let web = build_web();
    let native_ok = native.wait().map(|s| s.success()).unwrap_or(false);
    web?;
    if !native_ok {
        return Err("building the native tests failed".into());
    }
    // Graphics drivers complain on stderr without a runtime dir; give them one.
    let runtime_dir = std::env::var("XDG_RUNTIME_DIR").unwrap_or_else(|_| std::env::temp_dir().display().to_string());
    // One native profile (release) for the tests and the CLI, so burn is built once.
    run(cargo().args(["test", "--release", "--package", "llmplay"]).env("XDG_RUNTIME_DIR", &runtime_dir))?;
    // The GPU code path, on a CPU Vulkan driver.
    ensure_lavapipe()?;
    run(cargo()
        .args(["test", "--release", "--package", "llmplay", "--test", "wgpu", "--", "--ignored"])
        .env("XDG_RUNTIME_DIR", &runtime_dir))?;
    browser_tests()
}

fn wasm_bindgen_version() -> Result<String, String> {
    let lock = std::fs::read_to_string(root().join("Cargo.lock")).map_err(|e| format!("reading Cargo.lock: {e}"))?;
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line == "name = \"wasm-bindgen\"" {
            if let Some(v) = lines.next().and_then(|l| l.strip_prefix("version = \"")) {
                return Ok(v.trim_end_matches('"').to_string());
            }
        }
    }
    Err("wasm-bindgen is not in Cargo.lock".into())
}

fn ensure_wasm_bindgen(version: &str) -> Result<(), String> {
    let have = output(Command::new("wasm-bindgen").arg("--version")).unwrap_or_default();
    if !have.contains(version) {
        // --force: cargo's install records may say "installed" when the binary is gone.
        run(cargo().args(["install", "--force", "wasm-bindgen-cli", "--version", version]))?;
    }
    Ok(())
}

/// The npm packages in package.json (uPlot, binaryen's wasm-opt, playwright-core), installed
/// from package-lock.json when missing or stale. Debian's older wasm-opt writes modules that
/// fail to load, hence binaryen from npm.
fn ensure_npm_packages() -> Result<(), String> {
    let modules = root().join("node_modules");
    let stamp = modules.join(".package-lock.json");
    let lock = root().join("package-lock.json");
    let fresh = match (std::fs::metadata(&stamp).and_then(|m| m.modified()), std::fs::metadata(&lock).and_then(|m| m.modified())) {
        (Ok(installed), Ok(locked)) => installed >= locked,
        _ => false,
    };
    if !fresh {
        run(Command::new("npm").args(["ci", "--no-audit", "--no-fund", "--silent"]))?;
    }
    Ok(())
}

/// Builds the wasm module and its JS glue into pkg/.
fn build_web() -> Result<PathBuf, String> {
    build_web_profile("wasm-release")
}

fn build_web_profile(profile: &str) -> Result<PathBuf, String> {
    ensure_wasm_target()?;
    let version = wasm_bindgen_version()?;
    ensure_wasm_bindgen(&version)?;
    run(cargo().args(["rustc", "--lib", "--profile", profile, "--no-default-features", "--features", "web", "--target", "wasm32-unknown-unknown", "--crate-type", "cdylib"]))?;
    let target = std::env::var("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|_| root().join("target"));
    let wasm = target.join("wasm32-unknown-unknown").join(profile).join("llmplay.wasm");
    let pkg = root().join("pkg");
    // wasm-bindgen + wasm-opt take minutes; skip them when pkg/ is already built from this module.
    let stamp = pkg.join(".built-from");
    let source = std::fs::metadata(&wasm).map_err(|e| format!("{}: {e}", wasm.display()))?;
    let id = format!("{profile} {} {:?}", source.len(), source.modified().ok());
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(id.as_str()) && pkg.join("vendor/uPlot.esm.js").exists() {
        eprintln!("xtask: pkg/ is up to date");
        return Ok(pkg);
    }
    run(Command::new("wasm-bindgen").args(["--target", "web", "--no-typescript", "--out-dir"]).arg(&pkg).arg(&wasm))?;
    ensure_npm_packages()?;
    let opt = root().join("node_modules/.bin/wasm-opt");
    let out = pkg.join("llmplay_bg.wasm");
    if profile == "wasm-release" {
        run(Command::new(opt).arg(&out).arg("-Oz").arg("--enable-bulk-memory").arg("--enable-nontrapping-float-to-int").arg("--enable-simd").arg("-o").arg(&out))?;
    }
    // The plotting library, served beside the engine (the page works from any static host).
    let vendor = pkg.join("vendor");
    std::fs::create_dir_all(&vendor).map_err(|e| e.to_string())?;
    for file in ["uPlot.esm.js", "uPlot.min.css"] {
        std::fs::copy(root().join("node_modules/uplot/dist").join(file), vendor.join(file)).map_err(|e| format!("copying {file}: {e}"))?;
    }
    let size = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
    eprintln!("xtask: pkg/llmplay_bg.wasm is {:.1} MB", size as f64 / 1e6);
    std::fs::write(&stamp, id).map_err(|e| e.to_string())?;
    Ok(pkg)
}

fn serve(port: u16) -> Result<(), String> {
    build_web()?;
    let port = start_server(port)?;
    println!("llmplay playground: http://127.0.0.1:{port}/");
    loop {
        std::thread::park();
    }
}

/// Serves www/ and pkg/ on 127.0.0.1:`port` (0 = any free port) from a background thread;
/// returns the port.
fn start_server(port: u16) -> Result<u16, String> {
    let listener = TcpListener::bind(("127.0.0.1", port)).map_err(|e| format!("port {port} is busy ({e}); try --port N"))?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let _ = respond(stream);
            });
        }
    });
    Ok(port)
}

/// Debian's Chromium: real WebGPU (on SwiftShader without a GPU) for the browser tests.
fn ensure_chromium() -> Result<(), String> {
    if !Path::new("/usr/bin/chromium").exists() {
        apt_install(&["chromium"])?;
    }
    Ok(())
}

/// The page's end-to-end tests (tests/browser/) in headless Chromium against the built page.
fn browser_tests() -> Result<(), String> {
    build_web()?;
    ensure_chromium()?;
    // The page's defaults are checked against the CLI's (`llmplay recipes`); built already by
    // `cargo xtask test`, so this is quick there.
    run(cargo().args(["build", "--release", "--bin", "llmplay", "--quiet"]))?;
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root().join("target"));
    let port = start_server(0)?;
    let shots = root().join("target/screenshots");
    run(Command::new("node")
        .args(["--test", "--test-concurrency=1", "--test-reporter=spec", "tests/browser/"])
        .env("LLMPLAY_URL", format!("http://127.0.0.1:{port}/"))
        .env("LLMPLAY_BIN", target.join("release/llmplay"))
        .env("LLMPLAY_SHOTS", &shots))
}

/// The page's Content-Security-Policy as a header, read from the `<meta>` in www/index.html (its
/// one home): the meta tag covers the page, the header covers the engine's worker too.
fn csp_header() -> &'static str {
    static HEADER: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HEADER.get_or_init(|| {
        let html = std::fs::read_to_string(root().join("www/index.html")).unwrap_or_default();
        let policy = html
            .split("http-equiv=\"Content-Security-Policy\" content=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_default();
        if policy.is_empty() { String::new() } else { format!("Content-Security-Policy: {policy}\r\n") }
    })
}

/// A minimal static file server for www/ and pkg/ (the page needs nothing else).
fn respond(mut stream: TcpStream) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    let path = request.split_whitespace().nth(1).unwrap_or("/").split('?').next().unwrap_or("/").to_string();
    let rel = if path == "/" { "index.html".to_string() } else { path.trim_start_matches('/').to_string() };
    let file = if rel.contains("..") {
        None
    } else if let Some(p) = rel.strip_prefix("pkg/") {
        Some(root().join("pkg").join(p))
    } else {
        Some(root().join("www").join(&rel))
    };
    let body = file.as_ref().and_then(|f| {
        let mut bytes = Vec::new();
        std::fs::File::open(f).and_then(|mut h| h.read_to_end(&mut bytes)).ok().map(|_| bytes)
    });
    let (status, body) = match body {
        Some(b) => ("200 OK", b),
        None => ("404 Not Found", b"not found".to_vec()),
    };
    let mime = match rel.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript",
        Some("wasm") => "application/wasm",
        Some("css") => "text/css",
        Some("json") => "application/json",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    };
    write!(stream, "HTTP/1.1 {status}\r\nContent-Type: {mime}\r\nContent-Length: {}\r\nCache-Control: no-cache\r\n{}Connection: close\r\n\r\n", body.len(), csp_header())?;
    stream.write_all(&body)
}
