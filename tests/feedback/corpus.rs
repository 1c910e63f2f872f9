//! The corpus in `tests/fixtures/bounces/`: every message classified as `expected.toml` says,
//! and every message of the folder listed there.

use std::path::PathBuf;

use bulletin::feedback::classify;

#[derive(serde::Deserialize)]
struct Expected {
    message: Vec<Entry>,
}

#[derive(serde::Deserialize)]
struct Entry {
    file: String,
    kind: String,
    format: Option<String>,
    status: Option<String>,
    recipient: Option<String>,
}

fn folder() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bounces")
}

#[test]
fn every_message_of_the_corpus_is_classified_as_expected() {
    let text = std::fs::read_to_string(folder().join("expected.toml")).expect("expected.toml");
    let expected: Expected = toml::from_str(&text).expect("expected.toml parses");
    let mut listed: Vec<&str> = expected.message.iter().map(|e| e.file.as_str()).collect();
    listed.sort_unstable();
    let mut present: Vec<String> = std::fs::read_dir(folder())
        .expect("corpus folder")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".eml"))
        .collect();
    present.sort_unstable();
    assert_eq!(
        listed, present,
        "every message has an expectation, and the reverse"
    );
    assert!(
        present.len() >= 20,
        "at least 20 messages: {}",
        present.len()
    );

    let mut wrong = Vec::new();
    for e in &expected.message {
        let raw = std::fs::read(folder().join(&e.file)).expect("message");
        let got = match classify(&raw) {
            Err(_) => ("unclassified".to_string(), None, None, None),
            Ok(r) => (
                r.kind.to_string(),
                Some(r.format.to_string()),
                r.status,
                r.recipient,
            ),
        };
        let want = (
            e.kind.clone(),
            e.format.clone(),
            e.status.clone(),
            e.recipient.clone(),
        );
        if got != want {
            wrong.push(format!("{}: got {got:?}, expected {want:?}", e.file));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
