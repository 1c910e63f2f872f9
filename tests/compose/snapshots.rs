//! The rendered HTML and text of each fixture edition, with slots shown as placeholders.

use bulletin::content::Edition;
use bulletin::render::{self, Escape, SlotKey, SubscriberSlots, Theme};

fn render(dir: &std::path::Path) -> bulletin::render::RenderedEdition {
    let edition = Edition::load(dir).expect("edition loads");
    let theme = Theme::load(None).expect("theme loads");
    let list = super::list();
    // Local pictures are published as compose does; their names depend only on their bytes.
    let out = tempfile::tempdir().expect("tempdir");
    let to = bulletin::assets::Destination::new(out.path(), &list.public_url, &edition.slug, None);
    let published = bulletin::assets::publish(&edition, &to).expect("publishes");
    render::render_with(&edition, &theme, &list, None, &published).expect("edition renders")
}

#[test]
fn example_edition_html_and_text() {
    let rendered = render(&super::example());
    assert_eq!(
        rendered.variants.keys().collect::<Vec<_>>(),
        ["ar", "en", "es", "fr"],
        "one variant per language"
    );
    // Arabic and Spanish translate the intro and some articles on purpose: the others show
    // in English, which is what the RTL and fallback checks need. Nothing else may warn.
    let untranslated = |lang: &str| -> Vec<String> {
        rendered.variants[lang]
            .fell_back
            .iter()
            .map(|f| f.part.clone())
            .collect()
    };
    assert_eq!(
        untranslated("ar"),
        [
            "article pillar-legislation",
            "article pillar-capacity",
            "article pillar-cooperation",
            "article pillar-protection",
            "article pillar-children"
        ]
    );
    assert_eq!(
        untranslated("es"),
        [
            "article pillar-legislation",
            "article pillar-capacity",
            "article pillar-cooperation",
            "article pillar-children",
            "article expected-outcomes"
        ]
    );
    assert!(
        rendered
            .lint
            .findings
            .iter()
            .all(|f| f.code == "fallback" && matches!(f.language.as_deref(), Some("ar" | "es"))),
        "the example edition must lint clean but for its untranslated articles:\n{}",
        rendered.lint
    );
    for (lang, v) in &rendered.variants {
        if matches!(lang.as_str(), "en" | "fr") {
            assert!(v.fell_back.is_empty(), "{lang}: {:?}", v.fell_back);
        }
        insta::assert_snapshot!(format!("glo-act-{lang}.html"), v.html.with_placeholders());
        insta::assert_snapshot!(format!("glo-act-{lang}.txt"), v.text.with_placeholders());
    }
}

#[test]
fn minimal_fixture_html_and_text() {
    let rendered = render(&super::fixture("minimal"));
    for (lang, v) in &rendered.variants {
        insta::assert_snapshot!(format!("minimal-{lang}.html"), v.html.with_placeholders());
        insta::assert_snapshot!(format!("minimal-{lang}.txt"), v.text.with_placeholders());
    }
    let es = &rendered.variants["es"];
    let parts: Vec<&str> = es.fell_back.iter().map(|f| f.part.as_str()).collect();
    assert_eq!(parts, ["article tides"]);
    assert!(es.fell_back[0].file.ends_with("articles/tides.md"));
    assert!(rendered.variants["en"].fell_back.is_empty());
    // The intro's attribute placeholder became a slot with its fallback, in both parts.
    for part in [&es.html, &es.text] {
        assert!(
            part.slots()
                .iter()
                .any(|s| s.key == SlotKey::Attribute("city".into()) && s.fallback == "amiga, amigo"),
            "{:?}",
            part.slots()
        );
    }
    // The Spanish variant says so in the lint report, as a warning.
    assert!(
        rendered
            .lint
            .findings
            .iter()
            .any(|f| f.code == "fallback" && f.language.as_deref() == Some("es"))
    );
}

#[test]
fn subscriber_values_are_escaped_for_where_they_sit() {
    let rendered = render(&super::example());
    let v = &rendered.variants["en"];
    let mut attributes = serde_json::Map::new();
    attributes.insert("country".into(), "<b>Peru</b>".into());
    let slots = SubscriberSlots {
        name: "<script>alert('x')</script>".into(),
        email: "a@example.org".into(),
        unsubscribe_url: "https://newsletter.example.org/u/t?a=1&b=2".into(),
        preferences_url: "javascript:alert(1)".into(),
        archive_url: "https://newsletter.example.org/archive/x/en/".into(),
        attributes,
    };
    let html = v.html.fill(&slots);
    assert!(
        !html.contains("<script>alert"),
        "a name must never become markup"
    );
    assert!(html.contains("Dear <bdi>&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;</bdi>,"));
    assert!(html.contains("href=\"https://newsletter.example.org/u/t?a=1&amp;b=2\""));
    assert!(
        !html.contains("javascript:"),
        "only web and mail URLs reach an href"
    );
    let text = v.text.fill(&slots);
    assert!(
        text.contains("Dear <script>alert('x')</script>,"),
        "text is not HTML"
    );
    assert!(text.contains("https://newsletter.example.org/u/t?a=1&b=2"));
    // The unsubscribe slot sits in an href of the HTML and on a line of the text.
    assert!(
        v.html
            .slots()
            .iter()
            .any(|s| s.key == SlotKey::UnsubscribeUrl && s.escape == Escape::Url)
    );
    assert!(
        v.text
            .slots()
            .iter()
            .any(|s| s.key == SlotKey::UnsubscribeUrl)
    );
}

#[test]
fn archive_page_has_no_subscriber_data_and_hash_follows_content() {
    let rendered = render(&super::example());
    let archive = &rendered.variants["fr"].archive_html;
    assert!(archive.contains("<html lang=\"fr\""));
    assert!(archive.contains("Bonjour <bdi>à toutes et à tous</bdi>,"));
    assert!(!archive.contains("BxSLOT"), "no token survives");
    assert!(archive.contains("https://newsletter.example.org/unsubscribe"));

    let again = render(&super::example());
    assert_eq!(rendered.content_hash, again.content_hash, "stable");
    let dir = tempfile::tempdir().expect("tempdir");
    super::copy_dir(&super::example(), dir.path());
    let article = dir.path().join("articles/pillar-capacity.fr.md");
    let text = std::fs::read_to_string(&article).expect("read");
    std::fs::write(&article, text.replace("Une loi", "Un texte de loi")).expect("write");
    let changed = render(dir.path());
    assert_ne!(rendered.content_hash, changed.content_hash);
}

#[test]
fn the_email_is_accessible_and_well_formed() {
    let rendered = render(&super::example());
    for (lang, v) in &rendered.variants {
        let html = v.html.with_placeholders();
        assert!(
            html.contains(&format!("<html lang=\"{lang}\"")),
            "{lang}: lang"
        );
        assert!(html.contains("<title>"), "{lang}: title");
        assert!(html.contains("color-scheme"), "{lang}: dark mode meta");
        assert!(
            html.contains("prefers-color-scheme: dark"),
            "{lang}: dark mode styles"
        );
        let preheader = v.preheader.as_deref().expect("preheader");
        // Handlebars writes `'` as `&#x27;`.
        let escaped = preheader.replace('\'', "&#x27;");
        assert!(html.contains(&escaped), "{lang}: preheader in the HTML");
        assert!(
            html.contains("Vienna International Centre"),
            "{lang}: postal address"
        );
        // 102 KB is Gmail's clipping limit; the example stays well under it.
        assert!(
            v.html.literal_len() < 80 * 1024,
            "{lang}: {}",
            v.html.literal_len()
        );
        assert!(
            !v.text.with_placeholders().contains('<'),
            "{lang}: no HTML in the text part"
        );
    }
}
