//! Seeded fuzzing of everything llmplay reads from outside ("safe to open any shared link"):
//! model bundles in both forms, `tokenizer.json`, `config.json` and `llmplay.json` on their own,
//! chat and judgement JSONL, and corpora in any encoding.
//!
//! Every case must end in `Ok` — and then be usable: a bundle's model builds on the CPU and runs
//! the tokenizer's ids, the tokenizer encodes a sample and decodes every id below the vocabulary
//! — or in `Err` with a message. Never a panic (each case runs under `catch_unwind`), never a
//! hang (see [`HANG_GUARD`]), never memory out of proportion to the input (see [`memory_bound`],
//! measured by the counting allocator below).
//!
//! [`CASES`] = 300 cases for each of the 9 kinds in [`KINDS`] (2,700 in all), seed [`SEED`];
//! about 10 s on two cores. Each case draws from its own generator seeded by (seed, kind,
//! number), so a failure names all three and `LLMPLAY_FUZZ_CASE=kind/number` reruns that case
//! alone (printing its input), `LLMPLAY_FUZZ_KIND=kind` one kind; `LLMPLAY_FUZZ_CASES=N` runs N
//! per kind instead (a longer run, by hand).
//!
//! Everything here runs in the one test, serially, so the allocator's peak is one case's.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::{json, Value};

use llmplay::bundle::{parse_hf_config, Bundle, Metadata};
use llmplay::chat::{parse_jsonl, render};
use llmplay::data::{check_corpus, decode_corpus, EncodingChoice, TokenData};
use llmplay::model::{Gpt, GptConfig};
use llmplay::reward_model::{example_preferences, parse_preferences, to_jsonl};
use llmplay::tokenizer::{Tokenizer, ALLOWED_PATTERNS};

const SEED: u64 = 0x1151_F022;
const CASES: usize = 300;
/// A case running longer than this is reported as a hang. It is a guard against endless loops
/// and catastrophic backtracking, not a speed claim: real cases take milliseconds.
const HANG_GUARD: Duration = Duration::from_secs(20);

/// The most memory a case may hold at once: a fixed allowance for the small model, tokenizer
/// and the libraries' working buffers, plus 50 times the input's size (JSON parsed into
/// `serde_json::Value`s, f16 weights widened to f32, per-character tokenizer structures are
/// each a small multiple of their input; 50 leaves room for them together but still catches
/// an allocation driven by a number in the file instead of by its size).
fn memory_bound(input_bytes: usize) -> usize {
    (64 << 20) + 50 * input_bytes
}

// ---- a counting allocator: live bytes and their peak ----

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
/// Past this much live memory an allocation fails (and the process aborts, naming the case)
/// rather than exhausting the machine.
const HARD_LIMIT: usize = 4 << 30;
/// The running case as `kind * 1_000_000 + number`, for that message.
static CURRENT: AtomicUsize = AtomicUsize::new(usize::MAX);
/// Live bytes when the case's input was ready: its peak is measured from here, so building
/// the input (mutating big JSON documents) does not count against the code under test.
static BASELINE: AtomicUsize = AtomicUsize::new(0);

fn start_measuring() {
    let live = LIVE.load(Relaxed);
    BASELINE.store(live, Relaxed);
    PEAK.store(live, Relaxed);
}

fn reserve(size: usize) -> bool {
    let now = LIVE.fetch_add(size, Relaxed) + size;
    if now > HARD_LIMIT {
        LIVE.fetch_sub(size, Relaxed);
        over_limit(size);
        return false;
    }
    PEAK.fetch_max(now, Relaxed);
    true
}

/// Writes which case asked for too much without allocating (we are inside the allocator).
fn over_limit(size: usize) {
    use std::io::Write;
    struct Buf([u8; 160], usize);
    impl std::fmt::Write for Buf {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            let n = s.len().min(self.0.len() - self.1);
            self.0[self.1..self.1 + n].copy_from_slice(&s.as_bytes()[..n]);
            self.1 += n;
            Ok(())
        }
    }
    let mut buf = Buf([0; 160], 0);
    let case = CURRENT.load(Relaxed);
    let kind = KINDS.get(case / 1_000_000).map_or("?", |k| k.0);
    let _ = std::fmt::Write::write_fmt(&mut buf, format_args!("fuzz: {kind}/{} asked for {size} more bytes past the 4 GiB limit\n", case % 1_000_000));
    let _ = std::io::stderr().write_all(&buf.0[..buf.1]);
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !reserve(layout.size()) {
            return std::ptr::null_mut();
        }
        let p = unsafe { System.alloc(layout) };
        if p.is_null() {
            LIVE.fetch_sub(layout.size(), Relaxed);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if !reserve(layout.size()) {
            return std::ptr::null_mut();
        }
        let p = unsafe { System.alloc_zeroed(layout) };
        if p.is_null() {
            LIVE.fetch_sub(layout.size(), Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let old = layout.size();
        if new_size > old && !reserve(new_size - old) {
            return std::ptr::null_mut();
        }
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        match (p.is_null(), new_size > old) {
            (true, true) => {
                LIVE.fetch_sub(new_size - old, Relaxed);
            }
            (false, false) => {
                LIVE.fetch_sub(old - new_size, Relaxed);
            }
            _ => {}
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

// ---- the kinds of input ----

/// What every case starts from: valid inputs to mutate, built once.
struct Base {
    device: Device,
    /// A tiny model with a character tokenizer and one with a byte-level BPE tokenizer.
    bundles: Vec<Files>,
    char_tokenizer: Tokenizer,
    chat_lines: Vec<String>,
    judgement_lines: Vec<String>,
    text: String,
    dir: PathBuf,
}

/// A bundle's files: (one-file bundle bytes, weights, config.json, tokenizer.json, llmplay.json).
type Files = (Vec<u8>, Vec<u8>, String, String, String);

type Kind = fn(&Base, &mut StdRng) -> Result<usize, String>;

/// Each kind returns its input's size, or a description of what went wrong (an `Err` from the
/// code under test is fine; a usable-looking result that is not usable is not).
const KINDS: [(&str, Kind); 9] = [
    ("single-file-bytes", single_file_bytes),
    ("single-file-header", single_file_header),
    ("folder", folder),
    ("tokenizer-json", tokenizer_json),
    ("config-json", config_json),
    ("meta-json", meta_json),
    ("chat-jsonl", chat_jsonl),
    ("judgement-jsonl", judgement_jsonl),
    ("corpus", corpus),
];

const SAMPLE: &str = "Hello, world! <|user|>What is 12 + 34?<|end|> café naïve — “quotes” 🎉 日本語\n\tline two\r\naaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!";

fn base() -> Base {
    let device = Device::flex();
    let text = common::sample_text();
    let char_tokenizer = Tokenizer::train_chars(std::iter::once(text.as_str())).unwrap();
    let bpe = Tokenizer::train_bpe(std::iter::once(text.as_str()), 300).unwrap();
    let bundles = [&char_tokenizer, &bpe]
        .into_iter()
        .map(|tokenizer| {
            let config = GptConfig::new(tokenizer.vocab_size()).with_n_layer(1).with_n_head(2).with_n_embd(16).with_block_size(16);
            let model = config.init(1, &device);
            let meta = Metadata { stage: "pretrain".into(), steps: 3, corpus_name: Some("sample.txt".into()), llmplay_version: "0.1.0".into(), ..Metadata::default() };
            let bundle = futures_lite::future::block_on(Bundle::from_model(&model, &config, tokenizer, meta)).unwrap();
            (bundle.to_single_file().unwrap(), bundle.safetensors_bytes(&[]).unwrap(), bundle.config_json(), bundle.tokenizer.to_json(), bundle.meta_json())
        })
        .collect();
    let chat_lines = [
        r#"{"messages": [{"role": "user", "content": "Hi!"}, {"role": "assistant", "content": "Hello."}]}"#,
        r#"{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]}"#,
    ]
    .map(String::from)
    .to_vec();
    let judgement_lines = to_jsonl(&example_preferences(8, 3)).lines().map(String::from).collect();
    let dir = std::env::temp_dir().join(format!("llmplay-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    Base { device, bundles, char_tokenizer, chat_lines, judgement_lines, text, dir }
}

/// Set when one case runs alone (`LLMPLAY_FUZZ_CASE`): its input is printed.
static SHOW: AtomicBool = AtomicBool::new(false);

fn show(input: &str) {
    if SHOW.load(Relaxed) {
        eprintln!("fuzz: the input ({} bytes), each line clipped:", input.len());
        for line in input.lines().take(40) {
            let clipped: String = line.chars().take(300).collect();
            eprintln!("  {} bytes: {clipped}", line.len());
        }
    }
}

/// Inputs the code under test accepted in this kind so far (the rest it refused): a fuzzer
/// whose every input is refused at the first check would test little.
static ACCEPTED: AtomicUsize = AtomicUsize::new(0);

fn accepted() {
    ACCEPTED.fetch_add(1, Relaxed);
}

/// A message from the code under test must say something.
fn refused(e: &str, what: &str) -> Result<(), String> {
    if e.trim().is_empty() {
        return Err(format!("{what} failed with an empty message"));
    }
    Ok(())
}

/// A loaded bundle must be usable: its model builds and runs on the tokenizer's ids.
fn use_bundle(bundle: &Bundle, device: &Device) -> Result<(), String> {
    accepted();
    let model = bundle.model(device).map_err(|e| format!("the bundle loaded but its model did not build: {e}"))?;
    use_tokenizer(&bundle.tokenizer, bundle.config.vocab_size, Some((&model, bundle.config.block_size, device)))
}

/// A loaded tokenizer encodes a sample (or says why not), and decodes every id below `vocab`.
fn use_tokenizer(tokenizer: &Tokenizer, vocab: usize, model: Option<(&Gpt, usize, &Device)>) -> Result<(), String> {
    match tokenizer.encode(SAMPLE) {
        Ok(ids) => {
            if let Some(&bad) = ids.iter().find(|&&id| id as usize >= vocab) {
                return Err(format!("the tokenizer produced id {bad}, but the vocabulary has {vocab}"));
            }
            if let (Some((model, block, device)), false) = (model, ids.is_empty()) {
                let ids: Vec<i64> = ids.iter().take(block).map(|&id| id as i64).collect();
                let n = ids.len();
                let logits = model.forward(Tensor::<2, Int>::from_data(TensorData::new(ids, [1, n]), device));
                let _ = logits.into_data();
            }
        }
        Err(e) => refused(&e, "encoding")?,
    }
    if let Err(e) = tokenizer.pieces(SAMPLE) {
        refused(&e, "pieces")?;
    }
    let all: Vec<u32> = (0..vocab as u32).collect();
    for id in all.iter().take(4096) {
        let _ = tokenizer.decode(&[*id]);
    }
    let _ = tokenizer.decode(&all);
    Ok(())
}

fn load(result: Result<Bundle, String>, device: &Device) -> Result<(), String> {
    match result {
        Ok(bundle) => use_bundle(&bundle, device),
        Err(e) => refused(&e, "loading the bundle"),
    }
}

// ---- mutations ----

fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

fn random_bytes(rng: &mut StdRng, n: usize) -> Vec<u8> {
    (0..n).map(|_| rng.random::<u8>()).collect()
}

/// Byte-level damage: flipped bits, random runs, insertions, deletions, truncation, and a
/// corrupt length prefix (a safetensors file starts with its header's length).
fn mutate_bytes(bytes: &mut Vec<u8>, rng: &mut StdRng) {
    for _ in 0..rng.random_range(1..4) {
        let len = bytes.len();
        match rng.random_range(0..7) {
            0 if len > 0 => {
                for _ in 0..rng.random_range(1..9) {
                    let i = rng.random_range(0..len);
                    bytes[i] ^= 1 << rng.random_range(0..8);
                }
            }
            1 if len > 0 => {
                let start = rng.random_range(0..len);
                let n = rng.random_range(1..65).min(len - start);
                let run = random_bytes(rng, n);
                bytes[start..start + n].copy_from_slice(&run);
            }
            2 => {
                let at = rng.random_range(0..=len);
                let n = rng.random_range(1..65);
                let run = random_bytes(rng, n);
                bytes.splice(at..at, run);
            }
            3 if len > 0 => {
                let start = rng.random_range(0..len);
                let end = (start + rng.random_range(1..256)).min(len);
                bytes.drain(start..end);
            }
            4 => bytes.truncate(rng.random_range(0..=len)),
            5 if len >= 8 => {
                let n = u64::from_le_bytes(bytes[..8].try_into().unwrap());
                let random = rng.random::<u64>();
                let lie = *pick(rng, &[0, 1, 7, n.wrapping_sub(1), n + 1, n + 8, len as u64, len as u64 - 8, u64::MAX, 1 << 40, 64 << 20, random]);
                bytes[..8].copy_from_slice(&lie.to_le_bytes());
            }
            _ if len > 16 => {
                // Splice a copy of one part of the file over another.
                let (a, b) = (rng.random_range(0..len), rng.random_range(0..len));
                let n = rng.random_range(1..(len - a.max(b)).clamp(2, 512));
                let copy = bytes[a..a + n].to_vec();
                bytes[b..b + n].copy_from_slice(&copy);
            }
            _ => bytes.push(rng.random()),
        }
    }
}

#[derive(Clone)]
enum Seg {
    Key(String),
    Index(usize),
}

/// The path to every node of a JSON document (the root is the empty path).
fn paths(v: &Value, here: &mut Vec<Seg>, out: &mut Vec<Vec<Seg>>) {
    out.push(here.clone());
    match v {
        Value::Object(map) => {
            for (k, x) in map {
                here.push(Seg::Key(k.clone()));
                paths(x, here, out);
                here.pop();
            }
        }
        Value::Array(items) => {
            for (i, x) in items.iter().enumerate() {
                here.push(Seg::Index(i));
                paths(x, here, out);
                here.pop();
            }
        }
        _ => {}
    }
}

fn node<'a>(v: &'a mut Value, path: &[Seg]) -> &'a mut Value {
    path.iter().fold(v, |v, seg| match seg {
        Seg::Key(k) => &mut v[k.as_str()],
        Seg::Index(i) => &mut v[*i],
    })
}

fn interesting(rng: &mut StdRng) -> Value {
    let values = [
        json!(null), json!(true), json!(false), json!(0), json!(-1), json!(1), json!(2), json!(3), json!(255), json!(256),
        json!(65535), json!(65536), json!(1u64 << 31), json!(1u64 << 32), json!((1u64 << 53) + 1), json!(u64::MAX),
        json!(i64::MIN), json!(1e300), json!(-1e300), json!(0.5), json!(-0.0), json!(1e-300), json!(1_000_000_000),
        json!(""), json!("a"), json!("\u{0}\u{1b}[31m\u{202e}"), json!("☃"), json!("(a+)+$"), json!("<|endoftext|>"),
        json!([]), json!({}), json!([1, 2, 3]), json!({"type": "Fuse"}),
    ];
    pick(rng, &values).clone()
}

/// `depth` nested arrays or objects (serde_json refuses more than 128 levels).
fn deep(rng: &mut StdRng, depth: usize) -> Value {
    let arrays = rng.random_bool(0.5);
    (0..depth).fold(json!(1), |inner, _| if arrays { json!([inner]) } else { json!({"type": inner}) })
}

fn huge_string(rng: &mut StdRng) -> String {
    let n = rng.random_range(10_000..600_000);
    let c = *pick(rng, &['a', ' ', 'é', '🎉', '\u{0}', '\n']);
    std::iter::repeat_n(c, n).collect()
}

/// Structural damage anywhere in a JSON document.
fn mutate_json(v: &mut Value, rng: &mut StdRng) {
    let mut all = Vec::new();
    paths(v, &mut Vec::new(), &mut all);
    let path = pick(rng, &all).clone();
    let donor = node(v, pick::<Vec<Seg>>(rng, &all)).clone();
    let target = node(v, &path);
    match rng.random_range(0..10) {
        0 => {
            // Delete the node from its parent (or empty the root).
            let (parent, last) = match path.split_last() {
                Some((last, parent)) => (node(v, parent), Some(last.clone())),
                None => (v, None),
            };
            match (parent, last) {
                (Value::Object(map), Some(Seg::Key(k))) => {
                    map.remove(&k);
                }
                (Value::Array(items), Some(Seg::Index(i))) => {
                    items.remove(i);
                }
                (root, _) => *root = json!({}),
            }
        }
        1 | 2 => *target = interesting(rng),
        3 => {
            let depth = *pick(rng, &[20, 60, 120, 127, 130, 300]);
            *target = deep(rng, depth);
        }
        4 if rng.random_bool(0.3) => *target = json!(huge_string(rng)),
        5 if rng.random_bool(0.3) => {
            let n = rng.random_range(1_000..100_000);
            *target = Value::Array((0..n).map(|i| json!(i)).collect());
        }
        6 => {
            // Swap the node's type.
            *target = match target.take() {
                Value::Number(n) => json!(n.to_string()),
                Value::String(s) => s.parse::<f64>().map(|f| json!(f)).unwrap_or(json!([s])),
                Value::Array(items) => Value::Object(items.into_iter().enumerate().map(|(i, x)| (i.to_string(), x)).collect()),
                Value::Object(map) => Value::Array(map.into_iter().map(|(_, x)| x).collect()),
                Value::Bool(b) => json!(b as u8),
                Value::Null => json!("null"),
            }
        }
        7 => *target = donor,
        8 => match target {
            Value::Object(map) => {
                let key = pick(rng, &["type", "Regex", "String", "vocab", "merges", "pattern", "content", "id", "x", ""]).to_string();
                map.insert(key, interesting(rng));
            }
            Value::Array(items) => items.push(interesting(rng)),
            Value::String(s) => s.push_str(&"\u{1}é(a+)+$".repeat(rng.random_range(1..4))),
            other => *other = interesting(rng),
        },
        _ => *target = json!(*pick(rng, &[1e9, 1e12, 4294967296.0, 2e19, -1e9])),
    }
}

fn set(v: &mut Value, key: &str, value: Value) {
    *field(v, key) = value;
}

/// `v[key]`, making `v` an object first if an earlier mutation made it something else
/// (serde_json's `v[key]` panics on arrays and scalars).
fn field<'a>(v: &'a mut Value, key: &str) -> &'a mut Value {
    if !v.is_object() {
        *v = json!({});
    }
    v.as_object_mut().unwrap().entry(key).or_insert(Value::Null)
}

/// Catastrophic ones among them: nested quantifiers that backtrack exponentially on the run of
/// `a`s in [`SAMPLE`] (the lookahead sends fancy-regex down its backtracking path).
const PATTERNS: [&str; 10] = ["(a+)+$", "(a+)+(?=b)", "(x+x+)+y", "\\s", "", "[", "(?=a)a", "a{1000000}", "(.*){1,32000}[bc]", "\\p{L}+"];

fn random_pattern(rng: &mut StdRng) -> Value {
    if rng.random_bool(0.3) {
        return json!({"Regex": pick(rng, &ALLOWED_PATTERNS).1});
    }
    let text = *pick(rng, &PATTERNS);
    if rng.random_bool(0.5) { json!({"Regex": text}) } else { json!({"String": text}) }
}

/// A tokenizer part of any kind the `tokenizers` crate knows, with random parameters.
fn random_part(rng: &mut StdRng, section: &str, depth: usize) -> Value {
    let small = |rng: &mut StdRng| json!(*pick(rng, &[0u64, 1, 2, 5, 1000, u32::MAX as u64]));
    let text = |rng: &mut StdRng| json!(*pick(rng, &["", " ", "▁", "##", "</w>", "<0x", "a", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"]));
    let behaviors = ["Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous", "Foo"];
    let sequence = |rng: &mut StdRng, key: &str| {
        let n = if depth > 3 { 0 } else { rng.random_range(0..4) };
        json!({"type": "Sequence", key: (0..n).map(|_| random_part(rng, section, depth + 1)).collect::<Vec<_>>()})
    };
    match section {
        "normalizer" => match rng.random_range(0..12) {
            0 => json!({"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true, "strip_accents": null, "lowercase": true}),
            1 => json!({"type": "Strip", "strip_left": rng.random_bool(0.5), "strip_right": true}),
            2 => json!({"type": *pick(rng, &["NFC", "NFD", "NFKC", "NFKD", "Lowercase", "StripAccents", "Nmt", "ByteLevel"])}),
            3 => json!({"type": "Precompiled", "precompiled_charsmap": *pick(rng, &["", "AAAA", "////"])}),
            4 => json!({"type": "Precompiled"}),
            5 | 6 => json!({"type": "Replace", "pattern": random_pattern(rng), "content": text(rng)}),
            7 => json!({"type": "Prepend", "prepend": text(rng)}),
            8 => sequence(rng, "normalizers"),
            _ => json!({"type": "Foo"}),
        },
        "pre_tokenizer" => match rng.random_range(0..13) {
            0 => json!({"type": "ByteLevel", "add_prefix_space": rng.random_bool(0.5), "trim_offsets": true, "use_regex": rng.random_bool(0.5)}),
            1 => json!({"type": "CharDelimiterSplit", "delimiter": " "}),
            2 => json!({"type": "Metaspace", "replacement": "▁", "prepend_scheme": *pick(rng, &["always", "never", "first", "x"]), "split": rng.random_bool(0.5)}),
            3 => json!({"type": *pick(rng, &["Whitespace", "WhitespaceSplit", "BertPreTokenizer", "UnicodeScripts"])}),
            4 | 5 => json!({"type": "Split", "pattern": random_pattern(rng), "behavior": *pick(rng, &behaviors), "invert": rng.random_bool(0.5)}),
            6 => json!({"type": "Punctuation", "behavior": *pick(rng, &behaviors)}),
            7 => json!({"type": "Digits", "individual_digits": rng.random_bool(0.5)}),
            8 => json!({"type": "FixedLength", "length": small(rng)}),
            9 => sequence(rng, "pretokenizers"),
            _ => json!({"type": "Split"}),
        },
        "decoder" => match rng.random_range(0..12) {
            0 => json!({"type": "BPEDecoder", "suffix": text(rng)}),
            1 => json!({"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true}),
            2 => json!({"type": "WordPiece", "prefix": text(rng), "cleanup": rng.random_bool(0.5)}),
            3 => json!({"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": true}),
            4 => json!({"type": "CTC", "pad_token": text(rng), "word_delimiter_token": text(rng), "cleanup": true}),
            5 => json!({"type": "Replace", "pattern": random_pattern(rng), "content": text(rng)}),
            6 => json!({"type": *pick(rng, &["Fuse", "ByteFallback"])}),
            7 | 8 => json!({"type": "Strip", "content": *pick(rng, &[" ", "a", "▁"]), "start": small(rng), "stop": small(rng)}),
            9 => sequence(rng, "decoders"),
            _ => json!({"content": " ", "start": 1, "stop": 3}),
        },
        _ => match rng.random_range(0..7) {
            0 => json!({"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": rng.random_bool(0.5), "use_regex": true}),
            1 => json!({"type": "RobertaProcessing", "sep": ["</s>", small(rng)], "cls": ["<s>", 0], "trim_offsets": true, "add_prefix_space": true}),
            2 => json!({"type": "BertProcessing", "sep": ["[SEP]", small(rng)], "cls": ["[CLS]", 1]}),
            3 => json!({"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<|endoftext|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
                "special_tokens": {"<|endoftext|>": {"id": "<|endoftext|>", "ids": [small(rng)], "tokens": ["<|endoftext|>"]}}}),
            4 => sequence(rng, "processors"),
            _ => json!({"type": "Foo"}),
        },
    }
}

/// Damage aimed at what a tokenizer.json holds: its model, vocabulary, merges, parts and
/// patterns, added tokens, padding and truncation.
fn mutate_tokenizer(v: &mut Value, rng: &mut StdRng) {
    match rng.random_range(0..10) {
        0 => *field(field(v, "model"), "type") = json!(*pick(rng, &["BPE", "WordLevel", "WordPiece", "Unigram", "Foo"])),
        1 => {
            let n = *pick(rng, &[100, 10_000, 200_000]);
            let huge_ids = rng.random_bool(0.3);
            if let Some(vocab) = field(field(v, "model"), "vocab").as_object_mut() {
                let start = vocab.len();
                for i in 0..n {
                    let id = if huge_ids { json!(4_000_000_000u64 - i as u64) } else { json!(start + i) };
                    vocab.insert(format!("tok{i}"), id);
                }
            }
        }
        2 => {
            if let Some(vocab) = field(field(v, "model"), "vocab").as_object_mut() {
                let keys: Vec<String> = vocab.keys().cloned().collect();
                if !keys.is_empty() {
                    let key = pick(rng, &keys).clone();
                    vocab.insert(key, json!(*pick(rng, &[u32::MAX as i64, 1 << 20, 70_000, -1, 0, 5])));
                }
            }
        }
        3 => {
            let n = *pick(rng, &[10, 50_000]);
            let merges: Vec<Value> = (0..n).map(|i| if i % 2 == 0 { json!(format!("x{i} y")) } else { json!(["a", "b"]) }).collect();
            *field(field(v, "model"), "merges") = json!(merges);
        }
        4..=6 => {
            let section = *pick(rng, &["normalizer", "pre_tokenizer", "decoder", "post_processor"]);
            let depth = *pick(rng, &[60, 126, 130, 300]);
            let part = if rng.random_bool(0.1) { deep(rng, depth) } else { random_part(rng, section, 0) };
            set(v, section, part);
        }
        7 => {
            if let Some(added) = field(v, "added_tokens").as_array_mut() {
                added.push(json!({"id": *pick(rng, &[0u64, 5, 1 << 20, u32::MAX as u64]), "content": *pick(rng, &["<|x|>", "", "a", "<|endoftext|>"]),
                    "single_word": rng.random_bool(0.5), "lstrip": rng.random_bool(0.5), "rstrip": rng.random_bool(0.5), "normalized": rng.random_bool(0.5), "special": true}));
            }
        }
        8 => {
            set(v, "padding", json!({"strategy": {"Fixed": 1_000_000_000u64}, "direction": "Right", "pad_to_multiple_of": null, "pad_id": 0, "pad_type_id": 0, "pad_token": "<|endoftext|>"}));
            set(v, "truncation", json!({"direction": "Right", "max_length": 0, "strategy": "LongestFirst", "stride": 0}));
        }
        _ => mutate_json(v, rng),
    }
}

/// Damage aimed at a config.json's shape and variant fields.
fn mutate_config(v: &mut Value, rng: &mut StdRng) {
    if rng.random_bool(0.4) {
        return mutate_json(v, rng);
    }
    let keys = ["vocab_size", "n_layer", "n_head", "n_embd", "n_positions", "n_ctx", "n_inner", "layer_norm_epsilon", "resid_pdrop",
        "activation_function", "model_type", "architectures", "num_labels", "id2label", "tie_word_embeddings", "scale_attn_weights"];
    let key = *pick(rng, &keys);
    let value = match rng.random_range(0..4) {
        0 => json!(*pick(rng, &[1_000_000_000u64, 1 << 40, 1 << 20, 50257, 48, 1600, 4096, 0, 3, 7])),
        1 => json!(*pick(rng, &["gelu", "relu", "gpt2", "llama", "GPT2ForSequenceClassification"])),
        2 => json!(["GPT2ForSequenceClassification"]),
        _ => interesting(rng),
    };
    set(v, key, value);
}

fn mutate_meta(v: &mut Value, rng: &mut StdRng) {
    if rng.random_bool(0.4) {
        return mutate_json(v, rng);
    }
    let huge = "x".repeat(100_000);
    match rng.random_range(0..4) {
        0 => set(v, "stage", json!(*pick(rng, &["pretrain", "sft", "rl", "reward_model", "imported", "", "evil\u{202e}", huge.as_str()]))),
        1 => set(v, "corpus_name", json!(*pick(rng, &["a\u{0}b\u{1b}[2J\nc", "\u{202e}txt.exe", huge.as_str(), ""]))),
        2 => set(v, "steps", json!(*pick(rng, &[u64::MAX, 1 << 40, 4_294_967_295, 0]))),
        _ => set(v, "train_config", interesting(rng)),
    }
}

/// Mutates a JSON document given as text: usually structurally, sometimes as bytes.
fn mutate_document(text: &str, rng: &mut StdRng, structured: fn(&mut Value, &mut StdRng)) -> String {
    if rng.random_bool(0.2) {
        let mut bytes = text.as_bytes().to_vec();
        mutate_bytes(&mut bytes, rng);
        return String::from_utf8_lossy(&bytes).into_owned();
    }
    let Ok(mut v) = serde_json::from_str::<Value>(text) else {
        // Already damaged beyond JSON by an earlier mutation: damage it further as bytes.
        let mut bytes = text.as_bytes().to_vec();
        mutate_bytes(&mut bytes, rng);
        return String::from_utf8_lossy(&bytes).into_owned();
    };
    for _ in 0..rng.random_range(1..4) {
        structured(&mut v, rng);
    }
    if rng.random_bool(0.05) {
        // Deeper than serde_json allows, written by hand.
        let depth = rng.random_range(100..2000);
        return format!("{}{}{}", "[".repeat(depth), serde_json::to_string(&v).unwrap(), "]".repeat(depth));
    }
    serde_json::to_string(&v).unwrap()
}

// ---- the kinds ----

fn single_file_bytes(base: &Base, rng: &mut StdRng) -> Result<usize, String> {
    let mut bytes = pick(rng, &base.bundles).0.clone();
    mutate_bytes(&mut bytes, rng);
    start_measuring();
    load(Bundle::from_single_file(&bytes), &base.device)?;
    Ok(bytes.len())
}

/// Edits a one-file bundle's header: tensor dtypes, shapes and offsets, and the JSON documents
/// its metadata carries; then writes the length prefix to match (usually).
fn single_file_header(base: &Base, rng: &mut StdRng) -> Result<usize, String> {
    let file = &pick(rng, &base.bundles).0;
    let n = u64::from_le_bytes(file[..8].try_into().unwrap()) as usize;
    let mut header: Value = serde_json::from_slice(&file[8..8 + n]).unwrap();
    let data = &file[8 + n..];
    let names: Vec<String> = header.as_object().unwrap().keys().filter(|k| *k != "__metadata__").cloned().collect();
    for _ in 0..rng.random_range(1..4) {
        let name = pick(rng, &names).clone();
        match rng.random_range(0..9) {
            0 => *field(field(&mut header, &name), "dtype") = json!(*pick(rng, &["F16", "BF16", "F64", "I64", "BOOL", "U8", "F8_E4M3", "F4", "XX"])),
            1 => {
                let shape = match rng.random_range(0..4) {
                    0 => json!([]),
                    1 => json!([*pick(rng, &[0u64, 1, 1 << 40, u64::MAX, 1 << 31])]),
                    2 => json!([1 << 20, 1 << 20, 1 << 20]),
                    _ => json!(vec![1; rng.random_range(1..40)]),
                };
                *field(field(&mut header, &name), "shape") = shape;
            }
            2 => {
                let end = data.len() as u64;
                let offsets = *pick(rng, &[[0, 0], [0, end], [end, 0], [0, end + 4], [u64::MAX - 3, u64::MAX], [4, 8]]);
                *field(field(&mut header, &name), "data_offsets") = json!(offsets);
            }
            3 => {
                header.as_object_mut().unwrap().remove(&name);
            }
            4 => {
                let renamed = field(&mut header, &name).clone();
                header.as_object_mut().unwrap().insert(format!("{name}.x"), renamed);
                header.as_object_mut().unwrap().remove(&name);
            }
            5 => mutate_json(field(&mut header, &name), rng),
            _ => {
                let (doc, mutator): (&str, fn(&mut Value, &mut StdRng)) =
                    *pick(rng, &[("config.json", mutate_config as fn(&mut Value, &mut StdRng)), ("tokenizer.json", mutate_tokenizer), ("llmplay.json", mutate_meta)]);
                let slot = field(field(&mut header, "__metadata__"), doc);
                match slot.as_str().map(String::from) {
                    Some(text) if rng.random_bool(0.9) => *slot = json!(mutate_document(&text, rng, mutator)),
                    _ => *slot = interesting(rng),
                }
            }
        }
    }
    let mut text = serde_json::to_vec(&header).unwrap();
    while !text.len().is_multiple_of(8) {
        text.push(b' ');
    }
    let len = if rng.random_bool(0.9) { text.len() as u64 } else { rng.random_range(0..text.len() as u64 * 2) };
    let mut bytes = len.to_le_bytes().to_vec();
    bytes.extend_from_slice(&text);
    bytes.extend_from_slice(data);
    start_measuring();
    load(Bundle::from_single_file(&bytes), &base.device)?;
    Ok(bytes.len())
}

/// The folder form: the four files written out, one of them damaged or missing.
fn folder(base: &Base, rng: &mut StdRng) -> Result<usize, String> {
    let (_, weights, config, tokenizer, meta) = pick(rng, &base.bundles);
    let mut files: Vec<(&str, Vec<u8>)> = vec![
        ("model.safetensors", weights.clone()),
        ("config.json", config.clone().into_bytes()),
        ("tokenizer.json", tokenizer.clone().into_bytes()),
        ("llmplay.json", meta.clone().into_bytes()),
    ];
    let victim = rng.random_range(0..files.len());
    let (name, bytes) = &mut files[victim];
    let structured: Option<fn(&mut Value, &mut StdRng)> = match *name {
        "config.json" => Some(mutate_config),
        "tokenizer.json" => Some(mutate_tokenizer),
        "llmplay.json" => Some(mutate_meta),
        _ => None,
    };
    let missing = rng.random_bool(0.05);
    match structured {
        Some(mutator) if rng.random_bool(0.7) => *bytes = mutate_document(std::str::from_utf8(bytes).unwrap(), rng, mutator).into_bytes(),
        _ => mutate_bytes(bytes, rng),
    }
    let dir = &base.dir;
    for (i, (name, bytes)) in files.iter().enumerate() {
        let path = dir.join(name);
        let _ = std::fs::remove_file(&path);
        if !(missing && i == victim) {
            std::fs::write(&path, bytes).unwrap();
        }
    }
    start_measuring();
    load(Bundle::load(dir), &base.device)?;
    Ok(files.iter().map(|(_, b)| b.len()).sum())
}

fn tokenizer_json(base: &Base, rng: &mut StdRng) -> Result<usize, String> {
    let json = mutate_document(&pick(rng, &base.bundles).3, rng, mutate_tokenizer);
    show(&json);
    start_measuring();
    match Tokenizer::from_json(&json) {
        Ok(tokenizer) => {
            accepted();
            use_tokenizer(&tokenizer, tokenizer.vocab_size(), None)?
        }
        Err(e) => refused(&e, "Tokenizer::from_json")?,
    }
    Ok(json.len())
}

fn config_json(base: &Base, rng: &mut StdRng) -> Result<usize, String> {
    let json = mutate_document(&pick(rng, &base.bundles).2, rng, mutate_config);
    show(&json);
    start_measuring();
    match parse_hf_config(&json) {
        // An accepted config is one a model can be built from: its parameter list is bounded.
        Ok(config) => {
            accepted();
            config.validate().map_err(|e| format!("parse_hf_config accepted a config validate refuses: {e}"))?;
            let _ = config.num_params();
        }
        Err(e) => refused(&e, "parse_hf_config")?,
    }
    Ok(json.len())
}

fn meta_json(base: &Base, rng: &mut StdRng) -> Result<usize, String> {
    let json = mutate_document(&pick(rng, &base.bundles).4, rng, mutate_meta);
    show(&json);
    start_measuring();
    match Metadata::from_json(&json) {
        Ok(meta) => {
            accepted();
            let long = |s: &str| s.chars().count() > 201 || s.chars().any(char::is_control);
            if long(&meta.stage) || meta.corpus_name.as_deref().is_some_and(long) || long(&meta.llmplay_version) {
                return Err(format!("llmplay.json's text was kept unbounded or with control characters: {meta:?}"));
            }
        }
        Err(e) => refused(&e, "Metadata::from_json")?,
    }
    Ok(json.len())
}

/// A JSONL file: valid lines, damaged ones, random bytes, huge and deeply nested lines.
fn jsonl(valid: &[String], rng: &mut StdRng) -> String {
    let n = rng.random_range(1..20);
    let lines: Vec<String> = (0..n)
        .map(|_| match rng.random_range(0..10) {
            0..=2 => pick(rng, valid).clone(),
            3..=5 => mutate_document(pick::<String>(rng, valid), rng, mutate_json),
            6 => {
                let n = rng.random_range(0..200);
                String::from_utf8_lossy(&random_bytes(rng, n)).into_owned()
            }
            7 if rng.random_bool(0.1) => format!(r#"{{"messages": [{{"role": "user", "content": "{}"}}, {{"role": "assistant", "content": "ok"}}]}}"#, "a".repeat(rng.random_range(100_000..400_000))),
            8 => {
                let depth = *pick(rng, &[50, 127, 129, 5000]);
                format!(r#"{{"messages": {}1{}, "prompt": "x"}}"#, "[".repeat(depth), "]".repeat(depth))
            }
            _ => String::new(),
        })
        .collect();
    lines.join(if rng.random_bool(0.5) { "\n" } else { "\r\n" })
}

fn chat_jsonl(base: &Base, rng: &mut StdRng) -> Result<usize, String> {
    let text = jsonl(&base.chat_lines, rng);
    show(&text);
    start_measuring();
    let (good, bad) = parse_jsonl(&text);
    if !good.is_empty() {
        accepted();
    }
    let lines = text.lines().count();
    if let Some(b) = bad.iter().find(|b| b.line == 0 || b.line > lines || b.reason.is_empty()) {
        return Err(format!("a bad line was reported as {b}, in a file of {lines} lines"));
    }
    for conversation in good.iter().take(5) {
        if let Err(e) = render(&base.char_tokenizer, conversation) {
            refused(&e, "rendering a conversation")?;
        }
    }
    Ok(text.len())
}

fn judgement_jsonl(base: &Base, rng: &mut StdRng) -> Result<usize, String> {
    let text = jsonl(&base.judgement_lines, rng);
    show(&text);
    start_measuring();
    let (good, bad) = parse_preferences(&text);
    if !good.is_empty() {
        accepted();
    }
    let lines = text.lines().count();
    if let Some(b) = bad.iter().find(|b| b.line == 0 || b.line > lines || b.reason.is_empty()) {
        return Err(format!("a bad line was reported as {b}, in a file of {lines} lines"));
    }
    Ok(text.len())
}

/// Corpus bytes in every shape: text in each encoding, random bytes, NULs, one huge line.
fn corpus(base: &Base, rng: &mut StdRng) -> Result<usize, String> {
    let mut cut = rng.random_range(0..base.text.len());
    while !base.text.is_char_boundary(cut) {
        cut -= 1;
    }
    let text = &base.text[..cut];
    let latin1: Vec<u8> = text.chars().chain("café naïve “quoted” ".chars()).map(|c| match c {
        '“' => 0x93,
        '”' => 0x94,
        c if (c as u32) < 256 => c as u8,
        _ => b'?',
    }).collect();
    let utf16 = |big: bool| -> Vec<u8> {
        let mut out = if big { vec![0xFE, 0xFF] } else { vec![0xFF, 0xFE] };
        out.extend(text.encode_utf16().flat_map(|u| if big { u.to_be_bytes() } else { u.to_le_bytes() }));
        out
    };
    let mut bytes = match rng.random_range(0..10) {
        0 => text.as_bytes().to_vec(),
        1 => [&[0xEF, 0xBB, 0xBF][..], text.as_bytes()].concat(),
        2 => latin1,
        3 => utf16(false),
        4 => utf16(true),
        5 => {
            let n = rng.random_range(0..4096);
            random_bytes(rng, n)
        }
        6 => vec![0; rng.random_range(0..64)],
        7 if rng.random_bool(0.3) => {
            // One huge line, no newline to cut at.
            let c = *pick(rng, &["a", "é", "ab ", "日本"]);
            c.repeat(rng.random_range(100_000..400_000)).into_bytes()
        }
        _ => " \n\t\r ".repeat(rng.random_range(0..50)).into_bytes(),
    };
    if rng.random_bool(0.4) {
        mutate_bytes(&mut bytes, rng);
    }
    show(&String::from_utf8_lossy(&bytes));
    start_measuring();
    if let Err(e) = check_corpus(&bytes) {
        refused(&e, "check_corpus")?;
    }
    for choice in [EncodingChoice::Utf8, EncodingChoice::Utf16, EncodingChoice::Windows1252] {
        if let Err(e) = decode_corpus(&bytes, choice) {
            refused(&e, "decode_corpus")?;
        }
    }
    match decode_corpus(&bytes, EncodingChoice::Auto) {
        Ok((text, _)) => {
            accepted();
            let tokenizer = Tokenizer::train_chars(std::iter::once(text.as_ref())).map_err(|e| format!("a char tokenizer did not train on an accepted corpus: {e}"))?;
            use_tokenizer(&tokenizer, tokenizer.vocab_size(), None)?;
            if let Err(e) = TokenData::from_text(&tokenizer, &text, 8) {
                refused(&e, "TokenData::from_text")?;
            }
        }
        Err(e) => refused(&e, "decode_corpus")?,
    }
    Ok(bytes.len())
}

// ---- the runner ----

fn case_seed(kind: usize, number: usize) -> u64 {
    SEED ^ ((kind as u64) << 40) ^ (number as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| payload.downcast_ref::<String>().cloned()).unwrap_or_else(|| "a panic".into())
}

struct Report {
    failures: Vec<String>,
    cases: usize,
    slowest: (Duration, String),
    /// Per kind: how many of its inputs were accepted, and the time it took.
    accepted: Vec<(&'static str, usize, Duration)>,
    worst_ratio: (f64, String),
}

fn run_all(only: Option<(usize, usize)>, kind_only: Option<String>, per_kind: usize, started: &AtomicU64, epoch: Instant) -> Report {
    let base = base();
    // Warm up once outside any measurement (thread pools, lazily built tables).
    use_tokenizer(&base.char_tokenizer, base.char_tokenizer.vocab_size(), None).unwrap();
    let _ = Bundle::from_single_file(&base.bundles[0].0).map(|b| use_bundle(&b, &base.device));
    let mut report = Report { failures: Vec::new(), cases: 0, accepted: Vec::new(), slowest: (Duration::ZERO, String::new()), worst_ratio: (0.0, String::new()) };
    for (k, (kind, run)) in KINDS.iter().enumerate() {
        if kind_only.as_ref().is_some_and(|only| only != kind) {
            continue;
        }
        ACCEPTED.store(0, Relaxed);
        let kind_started = Instant::now();
        for number in 0..per_kind {
            if only.is_some_and(|o| o != (k, number)) {
                continue;
            }
            let seed = case_seed(k, number);
            let label = format!("{kind}/{number} (seed {seed:#x}, run alone with LLMPLAY_FUZZ_CASE={kind}/{number})");
            CURRENT.store(k * 1_000_000 + number, Relaxed);
            start_measuring();
            let t0 = Instant::now();
            started.store(epoch.elapsed().as_millis() as u64 + 1, Relaxed);
            let mut rng = StdRng::seed_from_u64(seed);
            let result = catch_unwind(AssertUnwindSafe(|| run(&base, &mut rng)));
            started.store(0, Relaxed);
            let elapsed = t0.elapsed();
            let peak = PEAK.load(Relaxed).saturating_sub(BASELINE.load(Relaxed));
            report.cases += 1;
            if elapsed > report.slowest.0 {
                report.slowest = (elapsed, label.clone());
            }
            match result {
                Err(payload) => report.failures.push(format!("{label}: panicked: {}", panic_message(payload.as_ref()))),
                Ok(Err(problem)) => report.failures.push(format!("{label}: {problem}")),
                Ok(Ok(input)) => {
                    if peak > memory_bound(input) {
                        report.failures.push(format!("{label}: held {} MiB at once for {} KiB of input (bound {} MiB)", peak >> 20, input >> 10, memory_bound(input) >> 20));
                    }
                    let ratio = peak as f64 / memory_bound(input) as f64;
                    if ratio > report.worst_ratio.0 {
                        report.worst_ratio = (ratio, format!("{label}: {} MiB for {} KiB of input", peak >> 20, input >> 10));
                    }
                }
            }
        }
        report.accepted.push((kind, ACCEPTED.load(Relaxed), kind_started.elapsed()));
    }
    let _ = std::fs::remove_dir_all(&base.dir);
    report
}

#[test]
fn untrusted_inputs_never_panic_hang_or_blow_up_memory() {
    let only = std::env::var("LLMPLAY_FUZZ_CASE").ok().map(|s| {
        let (kind, number) = s.split_once('/').expect("LLMPLAY_FUZZ_CASE=kind/number");
        let k = KINDS.iter().position(|(name, _)| *name == kind).expect("a kind's name");
        (k, number.parse().expect("a case number"))
    });
    let per_kind = std::env::var("LLMPLAY_FUZZ_CASES").ok().map_or(CASES, |n| n.parse().expect("a number of cases"));
    let per_kind = only.map_or(per_kind, |(_, n)| per_kind.max(n + 1));
    SHOW.store(only.is_some(), Relaxed);

    // Panics are caught and reported per case; print them without a backtrace.
    std::panic::set_hook(Box::new(|info| eprintln!("fuzz: {info}")));
    let epoch = Instant::now();
    let started = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let worker = {
        let (started, done) = (started.clone(), done.clone());
        std::thread::spawn(move || {
            let report = run_all(only, std::env::var("LLMPLAY_FUZZ_KIND").ok(), per_kind, &started, epoch);
            done.store(true, Relaxed);
            report
        })
    };
    // The hang guard: the worker cannot be stopped, but the test fails and names the case. (A
    // worker that dies outside a case's catch_unwind ends the loop too; join reports it.)
    while !done.load(Relaxed) && !worker.is_finished() {
        std::thread::sleep(Duration::from_millis(50));
        let since = started.load(Relaxed);
        if since != 0 && epoch.elapsed().as_millis() as u64 + 1 - since > HANG_GUARD.as_millis() as u64 {
            let case = CURRENT.load(Relaxed);
            panic!("fuzz: case {}/{} has run for over {HANG_GUARD:?}: a hang", KINDS[case / 1_000_000].0, case % 1_000_000);
        }
    }
    let _ = std::panic::take_hook();
    let report = worker.join().expect("the fuzz worker finished");
    eprintln!(
        "fuzz: {} cases in {:.1} s (seed {SEED:#x}); slowest {:.0} ms ({}); closest to the memory bound {:.0}% ({})",
        report.cases,
        epoch.elapsed().as_secs_f64(),
        report.slowest.0.as_secs_f64() * 1000.0,
        report.slowest.1,
        report.worst_ratio.0 * 100.0,
        report.worst_ratio.1
    );
    let accepted: Vec<String> = report.accepted.iter().map(|(kind, n, t)| format!("{kind} {n} ({:.1} s)", t.as_secs_f64())).collect();
    eprintln!("fuzz: inputs accepted per kind (of {per_kind}), and its time: {}", accepted.join(", "));
    assert!(report.failures.is_empty(), "{} of {} cases failed:\n{}", report.failures.len(), report.cases, report.failures.join("\n"));
}
