//! The chat template and the JSONL chat format (the SFT stage's data).

mod common;

use llmplay::chat::{parse_jsonl, prompt, render, template_text, Conversation, Message, Role};
use llmplay::tokenizer::{Tokenizer, ASSISTANT, END_OF_TURN, USER};

fn tokenizer() -> Tokenizer {
    Tokenizer::train_bpe(std::iter::once(common::sample_text().as_str()), 300).unwrap()
}

fn conversation() -> Conversation {
    let m = |role, content: &str| Message { role, content: content.into() };
    Conversation {
        messages: vec![
            m(Role::System, "Be brief."),
            m(Role::User, "What is 2+2?"),
            m(Role::Assistant, "4"),
            m(Role::User, "And to be?"),
            m(Role::Assistant, "or not to be"),
        ],
    }
}

#[test]
fn the_mask_covers_exactly_the_assistants_words_and_end_of_turn() {
    let tok = tokenizer();
    let r = render(&tok, &conversation()).unwrap();
    assert_eq!(r.ids.len(), r.mask.len());
    assert_eq!(
        tok.decode(&r.ids),
        "<|endoftext|><|system|>Be brief.<|end|><|user|>What is 2+2?<|end|><|assistant|>4<|end|><|user|>And to be?<|end|><|assistant|>or not to be<|end|>"
    );
    let learned: Vec<u32> = r.ids.iter().zip(&r.mask).filter(|(_, &m)| m).map(|(&id, _)| id).collect();
    let end = tok.token_id(END_OF_TURN).unwrap();
    let mut expected = tok.encode("4").unwrap();
    expected.push(end);
    expected.extend(tok.encode("or not to be").unwrap());
    expected.push(end);
    assert_eq!(learned, expected);
    // Tags and the user's and system's words are never learned.
    for (id, m) in r.ids.iter().zip(&r.mask) {
        if [tok.token_id(ASSISTANT).unwrap(), tok.token_id(USER).unwrap()].contains(id) {
            assert!(!m);
        }
    }
    let p = prompt(&tok, &conversation()).unwrap();
    assert_eq!(p.last(), tok.token_id(ASSISTANT).as_ref());
}

#[test]
fn the_template_as_text_reads_back_as_the_rendered_ids() {
    let chars = Tokenizer::train_chars(std::iter::once(common::sample_text().as_str())).unwrap();
    for tok in [tokenizer(), chars] {
        let conversation = conversation();
        let text = template_text(&tok, &conversation, false).unwrap();
        assert_eq!(tok.encode(&text).unwrap(), render(&tok, &conversation).unwrap().ids);
        let ids: Vec<u32> = tok.pieces(&text).unwrap().into_iter().map(|(id, _)| id).collect();
        assert_eq!(ids, render(&tok, &conversation).unwrap().ids, "the inspect view's tokens are the template's");
        let text = template_text(&tok, &conversation, true).unwrap();
        assert_eq!(tok.encode(&text).unwrap(), prompt(&tok, &conversation).unwrap());
    }
    // A tokenizer without the chat tokens (GPT-2's) is refused with a message, not read as characters.
    let json = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/hf-tiny-gpt2/tokenizer.json")).unwrap();
    let plain = Tokenizer::from_json(&json).unwrap();
    assert!(plain.token_id(USER).is_none());
    let err = template_text(&plain, &conversation(), true).unwrap_err();
    assert!(err.contains("no <|end|> token"), "{err}");
}

#[test]
fn malformed_jsonl_lines_are_reported_by_number() {
    let text = concat!(
        r#"{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}"#, "\n",
        "\n",
        "not json at all\n",
        r#"{"messages": [{"role": "wizard", "content": "x"}]}"#, "\n",
        r#"{"messages": [{"role": "user", "content": "only a question"}]}"#, "\n",
        r#"{"messages": [{"role": "assistant", "content": "fine"}]}"#, "\n",
    );
    let (good, bad) = parse_jsonl(text);
    assert_eq!(good.len(), 2);
    assert_eq!(bad.iter().map(|b| b.line).collect::<Vec<_>>(), vec![3, 4, 5]);
    assert!(bad[1].to_string().starts_with("line 4: unknown variant `wizard`"), "{}", bad[1]);
    assert!(bad[2].reason.contains("no assistant message"));
}
