//! Compose benchmarks: the whole edition (all languages), mrml alone on the same MJML (the
//! reference: the part of composing bulletin does not own), and the per-recipient slot fill
//! that `send` runs once per subscriber.

use std::hint::black_box;
use std::path::{Path, PathBuf};

use criterion::{Criterion, criterion_group, criterion_main};

use bulletin::content::Edition;
use bulletin::render::{self, ListIdentity, SubscriberSlots, Theme};

fn list() -> ListIdentity {
    ListIdentity {
        name: "GLO.ACT Newsletter".into(),
        from: "GLO.ACT <newsletter@example.org>".into(),
        reply_to: None,
        postal_address: Some("Vienna International Centre, 1400 Vienna, Austria".into()),
        public_url: "https://newsletter.example.org".into(),
    }
}

/// The example edition, or the one `BULLETIN_BENCH_EDITION` names: comparing two builds on
/// the same edition (an older checkout's, say) keeps the work per run equal.
fn edition_dir() -> PathBuf {
    std::env::var_os("BULLETIN_BENCH_EDITION").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("editions/glo-act-special-edition"),
        PathBuf::from,
    )
}

fn bench(c: &mut Criterion) {
    let list = list();
    let dir = edition_dir();
    let edition = Edition::load(&dir).expect("the example edition loads");
    let theme = Theme::load(None).expect("the built-in theme loads");
    let rendered = render::render(&edition, &theme, &list, None).expect("it renders");
    let languages = rendered.variants.len();

    c.bench_function(&format!("compose/all {languages} languages"), |b| {
        b.iter(|| render::render(black_box(&edition), &theme, &list, None).expect("renders"))
    });
    c.bench_function("compose/one language (en)", |b| {
        b.iter(|| render::render(black_box(&edition), &theme, &list, Some("en")).expect("renders"))
    });
    // Right to left adds the Outlook and text-part marking passes (absent from en/fr runs).
    if rendered.variants.contains_key("ar") {
        c.bench_function("compose/one language (ar)", |b| {
            b.iter(|| {
                render::render(black_box(&edition), &theme, &list, Some("ar")).expect("renders")
            })
        });
    }
    c.bench_function("compose/load edition from disk", |b| {
        b.iter(|| Edition::load(black_box(&dir)).expect("loads"))
    });

    let mjml = &rendered.variants["en"].mjml;
    let options = mrml::prelude::render::RenderOptions::default();
    c.bench_function("mrml/parse+render (en, reference)", |b| {
        b.iter(|| {
            let parsed = mrml::parse(black_box(mjml)).expect("parses");
            parsed.element.render(&options).expect("renders")
        })
    });

    let variant = &rendered.variants["en"];
    let mut attributes = serde_json::Map::new();
    attributes.insert("country".into(), "Brazil".into());
    let slots = SubscriberSlots {
        name: "Ana <Lima> & Co".into(),
        email: "ana.lima@example.org".into(),
        unsubscribe_url:
            "https://newsletter.example.org/u/eyJzIjoxMjM0NSwibCI6Imdsby1hY3QifQ.c2lnbmF0dXJl"
                .into(),
        preferences_url: "https://newsletter.example.org/p/eyJzIjoxMjM0NX0.c2ln".into(),
        archive_url: "https://newsletter.example.org/archive/glo-act-special-edition/en/".into(),
        attributes,
    };
    let mut out = String::new();
    c.bench_function("fill/html+text per recipient (reused buffer)", |b| {
        b.iter(|| {
            out.clear();
            variant.html.fill_into(black_box(&slots), &mut out);
            variant.text.fill_into(black_box(&slots), &mut out);
            out.len()
        })
    });
    c.bench_function("fill/html per recipient (new String)", |b| {
        b.iter(|| variant.html.fill(black_box(&slots)))
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
