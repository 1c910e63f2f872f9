//! Bounce handling costs: classifying the whole corpus (`tests/fixtures/bounces/`) against
//! mail-parser's parse of the same messages (the reference: the part bulletin does not own),
//! and building one recipient's message with the VERP return path against without it.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};

use bulletin::content::Edition;
use bulletin::mail::{Personaliser, RecipientData, Sender};
use bulletin::render::{self, ListIdentity, Theme};
use bulletin::token::Keys;

fn corpus() -> Vec<Vec<u8>> {
    let dir = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/bounces"
    ));
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("corpus")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| std::fs::read(p).expect("message"))
        .collect()
}

fn bench(c: &mut Criterion) {
    let messages = corpus();
    let n = messages.len();
    c.bench_function(&format!("feedback/classify {n} messages"), |b| {
        b.iter(|| {
            for m in &messages {
                let _ = black_box(bulletin::feedback::classify(black_box(m)));
            }
        })
    });
    c.bench_function(
        &format!("mail-parser/parse {n} messages (reference)"),
        |b| {
            b.iter(|| {
                for m in &messages {
                    black_box(mail_parser::MessageParser::default().parse(black_box(m)));
                }
            })
        },
    );

    let list = ListIdentity {
        name: "News".into(),
        from: "News <news@example.org>".into(),
        reply_to: None,
        postal_address: None,
        public_url: "https://news.example.org".into(),
    };
    let edition = Edition::load(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/editions/glo-act-special-edition"
    )))
    .expect("edition");
    let theme = Theme::load(None).expect("theme");
    let rendered = Arc::new(render::render(&edition, &theme, &list, None).expect("renders"));
    let sender =
        Sender::new("News", "news.example.org", "News <news@example.org>", None).expect("sender");
    let keys = Keys::new(
        &bulletin::config::Secret::new("a-bench-secret-of-thirty-two-chars!!"),
        &[],
    )
    .expect("keys");
    let plain = Personaliser::new(
        Arc::clone(&rendered),
        sender.clone(),
        keys.clone(),
        "https://news.example.org",
        1,
        1,
    );
    let verp = Personaliser::new(rendered, sender, keys, "https://news.example.org", 1, 1)
        .with_bounces("bounces", "bounces.example.org");
    let recipient = RecipientData {
        subscriber_id: 42,
        delivery_id: 4242,
        email: "reader@example.com",
        name: "Reader",
        language: Some("en"),
        attributes: "{}",
        token_nonce: "nonce",
    };
    let now = time::OffsetDateTime::now_utc();
    c.bench_function(
        "personalise/one message, From as return path (reference)",
        |b| b.iter(|| plain.build(black_box(&recipient), now).expect("builds")),
    );
    c.bench_function("personalise/one message, VERP return path", |b| {
        b.iter(|| verp.build(black_box(&recipient), now).expect("builds"))
    });
}

// The macro defines an undocumented function.
#[allow(missing_docs)]
mod group {
    use super::*;
    criterion_group!(benches, bench);
}
use group::benches;
criterion_main!(benches);
