//! Compose benchmarks: the whole edition (all languages), mrml alone on the same MJML (the
//! reference: the part of composing bulletin does not own), the per-recipient slot fill
//! that `send` runs once per subscriber, and the same edition with ten local photos,
//! published cold (every picture decoded, resized, encoded) and cached (nothing to redo),
//! to be read against the edition without pictures measured in the same run.

use std::hint::black_box;
use std::path::{Path, PathBuf};

use criterion::{Criterion, criterion_group, criterion_main};

use bulletin::assets::{self, Destination};
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

/// The example edition copied into `dir` with ten generated camera photos (3000×2000): one
/// per article (eight, in cards and grid tiles), the header's, and one in an article's text.
fn ten_photo_edition(dir: &Path) -> std::path::PathBuf {
    let ed = dir.join("edition");
    bulletin_testkit::copy_dir(&edition_dir(), &ed);
    for i in 0..10 {
        let photo = bulletin_testkit::pictures::camera_jpeg(3000, 2000, 1, true, i);
        let path = ed.join(format!("images/photo-{i}.jpg"));
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, photo).expect("write photo");
    }
    let mut articles: Vec<_> = std::fs::read_dir(ed.join("articles"))
        .expect("articles")
        .flatten()
        .map(|e| e.path())
        .collect();
    articles.sort();
    let mut photo = 0;
    for path in &articles {
        let text = std::fs::read_to_string(path).expect("article");
        // The example's first card has a diagram (in every language): photos replace it, so
        // that the edition holds exactly the ten photos.
        let text: String = text
            .lines()
            .filter(|l| !l.starts_with("image:") && !l.starts_with("image_alt:"))
            .map(|l| format!("{l}\n"))
            .collect();
        // Translations (`name.fr.md`, `name.ar.md`) keep the English article's photo.
        let translation = path
            .file_stem()
            .and_then(|s| s.to_str())
            .is_some_and(|s| s.contains('.'));
        if translation {
            std::fs::write(path, text).expect("write article");
            continue;
        }
        let i = photo;
        photo += 1;
        let mut text = text.replacen(
            "---\n",
            &format!("---\nimage: images/photo-{i}.jpg\nimage_alt: \"Photo {i}\"\n"),
            1,
        );
        if i == 0 {
            text.push_str("\n![Photo 9](images/photo-9.jpg)\n");
        }
        std::fs::write(path, text).expect("write article");
    }
    let manifest = ed.join("edition.toml");
    let toml = std::fs::read_to_string(&manifest).expect("manifest");
    let toml = toml.replacen(
        "template",
        "hero = \"images/photo-8.jpg\"\nhero_alt = \"Photo 8\"\ntemplate",
        1,
    );
    std::fs::write(&manifest, toml).expect("write manifest");
    ed
}

/// Publishing and rendering the ten-photo edition, cold and cached.
fn bench_photos(c: &mut Criterion) {
    let list = list();
    let theme = Theme::load(None).expect("the built-in theme loads");
    let dir = tempfile::tempdir().expect("tempdir");
    let edition = Edition::load(&ten_photo_edition(dir.path())).expect("loads");
    let destination = |out: &Path| Destination::new(out, &list.public_url, &edition.slug, None);
    let compose = |to: &Destination| {
        let published = assets::publish(black_box(&edition), to).expect("publishes");
        assert!(
            published.issues.iter().all(|i| !i.error),
            "{:?}",
            published.issues
        );
        render::render_with(&edition, &theme, &list, None, &published).expect("renders")
    };
    let mut group = c.benchmark_group("compose/10 photos");
    // A cold run decodes 60 megapixels: ten samples are plenty, and keep the run short.
    group.sample_size(10);
    group.bench_function("cold (publish + render)", |b| {
        b.iter_batched(
            || tempfile::tempdir().expect("tempdir"),
            |out| compose(&destination(out.path())),
            criterion::BatchSize::PerIteration,
        )
    });
    let cached = tempfile::tempdir().expect("tempdir");
    compose(&destination(cached.path()));
    group.bench_function("cached (publish + render)", |b| {
        b.iter(|| compose(&destination(cached.path())))
    });
    group.finish();
}

// The macro defines an undocumented function.
#[allow(missing_docs)]
mod group {
    use super::*;
    criterion_group!(benches, bench, bench_photos);
}
use group::benches;
criterion_main!(benches);
