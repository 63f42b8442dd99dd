//! Reading a corpus: text in the encodings people's files come in is read (and the caller told
//! which), binary files are still refused.

use llmplay::data::{check_corpus, decode_corpus, Encoding, EncodingChoice};

const TEXT: &str = "café naïve, déjà vu\nà bientôt\n";

fn latin1(text: &str) -> Vec<u8> {
    text.chars().map(|c| u8::try_from(u32::from(c)).expect("a Latin-1 character")).collect()
}

fn utf16(text: &str, big_endian: bool) -> Vec<u8> {
    let mut out = if big_endian { vec![0xFE, 0xFF] } else { vec![0xFF, 0xFE] };
    out.extend(text.encode_utf16().flat_map(|u| if big_endian { u.to_be_bytes() } else { u.to_le_bytes() }));
    out
}

fn auto(bytes: &[u8]) -> Result<(String, Encoding), String> {
    decode_corpus(bytes, EncodingChoice::Auto).map(|(text, encoding)| (text.into_owned(), encoding))
}

#[test]
fn utf8_utf16_and_windows_1252_text_is_read_and_named() {
    // UTF-8, with or without a byte-order mark (dropped).
    assert_eq!(auto(TEXT.as_bytes()).unwrap(), (TEXT.to_string(), Encoding::Utf8));
    let with_bom = [&[0xEF, 0xBB, 0xBF][..], TEXT.as_bytes()].concat();
    assert_eq!(auto(&with_bom).unwrap(), (TEXT.to_string(), Encoding::Utf8));
    assert_eq!(Encoding::Utf8.notice(), None, "UTF-8 needs no notice");

    // UTF-16 with a byte-order mark, either byte order.
    assert_eq!(auto(&utf16(TEXT, false)).unwrap(), (TEXT.to_string(), Encoding::Utf16Le));
    assert_eq!(auto(&utf16(TEXT, true)).unwrap(), (TEXT.to_string(), Encoding::Utf16Be));

    // Latin-1 (what old editors save): not UTF-8, few control bytes, so Windows-1252.
    let (text, encoding) = auto(&latin1(TEXT)).unwrap();
    assert_eq!((text.as_str(), encoding), (TEXT, Encoding::Windows1252));
    assert_eq!(encoding.notice().unwrap(), "read as Windows-1252 (Latin-1), not UTF-8");
    // Windows-1252's own characters in 0x80–0x9F: curly quotes, the euro sign, a dash.
    let windows = [b"\x93quoted\x94 costs 5 \x80 \x96 ".as_slice(), &latin1("café naïve\n")].concat();
    assert_eq!(auto(&windows).unwrap(), ("“quoted” costs 5 € – café naïve\n".to_string(), Encoding::Windows1252));
}

#[test]
fn binary_files_empty_and_blank_text_are_still_refused() {
    let png = [&b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"[..], &(0..2000u32).map(|i| (i * 37 % 256) as u8).collect::<Vec<_>>()].concat();
    let random: Vec<u8> = (0..4096u32).map(|i| (i * 37 % 256) as u8).collect();
    for (what, bytes) in [("a PNG", png), ("random bytes", random), ("NULs", vec![0; 100])] {
        let err = auto(&bytes).expect_err(what);
        assert!(err.contains("binary"), "{what}: {err}");
        assert!(check_corpus(&bytes).is_err(), "{what}");
    }
    for (what, bytes, needle) in [
        ("empty", vec![], "empty"),
        ("blank", b" \n\t\r\n".to_vec(), "only whitespace"),
        ("only a byte-order mark", vec![0xEF, 0xBB, 0xBF], "empty"),
        ("blank UTF-16", utf16(" \n ", false), "only whitespace"),
        ("broken UTF-16", [utf16("ab", false), vec![0x41]].concat(), "not valid UTF-16LE"),
    ] {
        let err = auto(&bytes).expect_err(what);
        assert!(err.contains(needle), "{what}: {err} should mention {needle:?}");
    }
}

#[test]
fn an_explicit_encoding_is_honoured() {
    let choice = |s: &str| s.parse::<EncodingChoice>().unwrap();
    assert_eq!(choice("latin-1"), EncodingChoice::Windows1252);
    assert_eq!(choice("UTF-8"), EncodingChoice::Utf8);
    assert!("ebcdic".parse::<EncodingChoice>().unwrap_err().contains("windows-1252"));

    // UTF-8 only: Latin-1 bytes are refused, with the offset of the first bad byte.
    let err = decode_corpus(&latin1(TEXT), choice("utf-8")).unwrap_err();
    assert!(err.contains("not UTF-8") && err.contains("offset 3"), "{err}");
    // UTF-8 read as Windows-1252 on purpose gives the familiar mojibake.
    let (text, encoding) = decode_corpus("café".as_bytes(), choice("windows-1252")).unwrap();
    assert_eq!((text.as_ref(), encoding), ("cafÃ©", Encoding::Windows1252));
    // UTF-16 without a byte-order mark is little-endian.
    let bare: Vec<u8> = utf16(TEXT, false)[2..].to_vec();
    assert_eq!(decode_corpus(&bare, choice("utf-16")).unwrap().0, TEXT);
    // check_corpus stays strict UTF-8.
    assert!(check_corpus(&latin1(TEXT)).unwrap_err().contains("not UTF-8"));
}
