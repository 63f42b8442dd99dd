//! Tokenizers: exact round-trips, reserved chat tokens, the unseen-character rule, and a
//! tokenizer.json that Python's `tokenizers` reads to the same ids.

mod common;

use llmplay::tokenizer::{Tokenizer, TokenizerKind, SPECIAL_TOKENS, UNKNOWN_CHAR};

const HARD_TEXT: &str = "Hello, world!\n\tTabs\tand  double  spaces\r\nEmoji 🤖🎭👍🏽, CJK 日本語の文章, \
    Ελληνικά, العربية, combining é, zero\u{200b}width, and <|user|> spelled out.\n\n";

#[test]
fn bpe_round_trips_any_utf8_text() {
    let corpus = common::sample_text();
    let tok = Tokenizer::train_bpe(std::iter::once(corpus.as_str()), 400).unwrap();
    for text in [HARD_TEXT, "", " ", "\n", "🤖", "日本", &corpus, "\u{10FFFF}\u{0}\u{7f}"] {
        let ids = tok.encode(text).unwrap();
        assert_eq!(tok.decode(&ids), text, "round trip of {text:?}");
    }
    // Merges were learned: the corpus takes fewer tokens than bytes.
    assert!(tok.encode(&corpus).unwrap().len() * 2 < corpus.len());
    assert!(tok.vocab_size() <= 400);
}

#[test]
fn char_tokenizer_round_trips_seen_characters_and_marks_unseen_ones() {
    let corpus = common::sample_text();
    let tok = Tokenizer::train_chars(std::iter::once(corpus.as_str())).unwrap();
    let ids = tok.encode(&corpus).unwrap();
    assert_eq!(ids.len(), corpus.chars().count(), "one token per character");
    assert_eq!(tok.decode(&ids), corpus);
    // 'é' and '🤖' never occur in the corpus: each becomes the replacement character. 'z' and
    // the digits do not occur either, but printable ASCII is always in the vocabulary.
    let unseen = tok.encode("zoé 42 🤖").unwrap();
    assert_eq!(tok.decode(&unseen), format!("zo{UNKNOWN_CHAR} 42 {UNKNOWN_CHAR}"));
    assert_eq!(tok.kind(), Some(TokenizerKind::Char));
}

#[test]
fn chat_special_tokens_are_reserved_in_both_tokenizers() {
    let corpus = common::sample_text();
    for tok in [
        Tokenizer::train_chars(std::iter::once(corpus.as_str())).unwrap(),
        Tokenizer::train_bpe(std::iter::once(corpus.as_str()), 300).unwrap(),
    ] {
        for (i, special) in SPECIAL_TOKENS.iter().enumerate() {
            assert_eq!(tok.token_id(special), Some(i as u32), "{special}");
            // Text that spells a special token becomes that one token.
            assert_eq!(tok.encode(special).unwrap(), vec![i as u32]);
        }
    }
}

#[test]
fn long_text_encodes_in_pieces_to_the_same_ids() {
    let corpus = common::sample_text();
    let tok = Tokenizer::train_bpe(std::iter::once(corpus.as_str()), 350).unwrap();
    let long: String = std::iter::repeat_n(corpus.as_str(), 200).collect::<Vec<_>>().join("\n");
    let pieces: usize = llmplay::tokenizer::chunks(&long, 1 << 14).count();
    assert!(pieces > 10, "the test text should be cut into many pieces");
    let whole: Vec<u32> = tok.encode(&corpus).unwrap();
    let ids = tok.encode(&long).unwrap();
    assert_eq!(&ids[..whole.len()], whole.as_slice());
    assert_eq!(tok.decode(&ids), long);
}

#[test]
fn tokenizer_json_round_trips_and_python_tokenizers_agrees() {
    let corpus = common::sample_text();
    let dir = tempdir("tok");
    for (name, tok) in [
        ("char", Tokenizer::train_chars(std::iter::once(corpus.as_str())).unwrap()),
        ("bpe", Tokenizer::train_bpe(std::iter::once(corpus.as_str()), 380).unwrap()),
    ] {
        let reloaded = Tokenizer::from_json(&tok.to_json()).unwrap();
        let sample = if name == "bpe" { HARD_TEXT.to_string() } else { corpus[..300].to_string() };
        let ids = tok.encode(&sample).unwrap();
        assert_eq!(reloaded.encode(&sample).unwrap(), ids);
        let path = dir.join(format!("{name}.json"));
        std::fs::write(&path, tok.to_json()).unwrap();
        let text_path = dir.join(format!("{name}.txt"));
        std::fs::write(&text_path, &sample).unwrap();
        let out = std::process::Command::new("python3")
            .arg("-c")
            .arg("import sys, json, tokenizers; t = tokenizers.Tokenizer.from_file(sys.argv[1]); \
                  print(json.dumps(t.encode(open(sys.argv[2], encoding='utf-8', newline='').read(), add_special_tokens=False).ids))")
            .arg(&path)
            .arg(&text_path)
            .output()
            .expect("python3 runs (cargo xtask test installs the reference packages)");
        assert!(out.status.success(), "python: {}", String::from_utf8_lossy(&out.stderr));
        let py_ids: Vec<u32> = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(py_ids, ids, "{name}: Python's tokenizers gives other ids");
    }
}

#[test]
fn bpe_vocabulary_too_small_is_refused() {
    let err = Tokenizer::train_bpe(std::iter::once("abc"), 100).unwrap_err();
    assert!(err.contains("at least"), "{err}");
}

fn tempdir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("llmplay-test-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The page colours text token by token: the pieces must spell the text exactly, for both kinds.
#[test]
fn token_pieces_spell_the_text() {
    let corpus = format!("{}\nnaïve café 東京 🙂 tabs\tand  spaces\r\n", common::sample_text());
    for tokenizer in [
        Tokenizer::train_bpe(std::iter::once(corpus.as_str()), 300).unwrap(),
        Tokenizer::train_chars(std::iter::once(corpus.as_str())).unwrap(),
    ] {
        let text = "To be, or not  to be 🙂 東京\tcafé\r\nend ";
        let pieces = tokenizer.pieces(text).unwrap();
        assert_eq!(pieces.iter().map(|(_, p)| p.as_str()).collect::<String>(), text);
        assert_eq!(pieces.iter().map(|(id, _)| *id).collect::<Vec<_>>(), tokenizer.encode(text).unwrap());
    }
}

/// Text with no newline to cut at is still encoded in bounded pieces: cut before a word, or
/// (with no spaces either) anywhere but inside a special token, to the same ids as in one go.
#[test]
fn one_long_line_encodes_in_pieces_to_the_same_ids() {
    let corpus = common::sample_text();
    let words: String = corpus.split_whitespace().cycle().take(60_000).collect::<Vec<_>>().join(" ");
    assert!(words.len() > 3 << 16 && !words.contains('\n'));
    for tok in [Tokenizer::train_bpe(std::iter::once(corpus.as_str()), 350).unwrap(), Tokenizer::train_chars(std::iter::once(corpus.as_str())).unwrap()] {
        let whole: Vec<u32> = tok.pieces(&words).unwrap().into_iter().map(|(id, _)| id).collect();
        assert_eq!(tok.encode(&words).unwrap(), whole, "{:?}", tok.kind());
    }
    let pieces: Vec<&str> = llmplay::tokenizer::chunks(&words, 1 << 12).collect();
    assert!(pieces.len() > 10 && pieces.iter().all(|p| p.len() <= 2 << 12));
    assert!(pieces[1..].iter().all(|p| p.starts_with(' ')), "cut before a word");

    // No spaces or newlines at all: special tokens survive the cuts.
    let tok = Tokenizer::train_chars(std::iter::once(corpus.as_str())).unwrap();
    let run = "abc<|end|>".repeat(30_000);
    let end = tok.token_id("<|end|>").unwrap();
    assert_eq!(tok.encode(&run).unwrap().iter().filter(|&&id| id == end).count(), 30_000);
    assert!(llmplay::tokenizer::chunks(&run, 1 << 12).all(|p| p.len() <= 2 << 12));
}
