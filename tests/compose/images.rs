//! Local pictures and documents through the real binary: published with hashed names, linked
//! absolutely with their width, placed in cards, grid tiles and the header, cached between
//! composes; and the lint findings for what is wrong with them, each with its file and line.
//! Also the rendering details of #13: the card picture's width attribute (mrml's shorthand
//! padding bug), the preheader filler and the iOS and hyphenation rules, and a web version
//! without a link to itself.

use std::path::{Path, PathBuf};

use bulletin_testkit::pictures;

const SLUG: &str = "glo-act-special-edition";
const ASSETS_URL: &str = "https://newsletter.example.org/archive/glo-act-special-edition/assets/";

/// A copy of the example edition in `dir`, with `edit` applied to the given article.
fn edition(dir: &Path) -> PathBuf {
    let ed = dir.join("edition");
    super::copy_dir(&super::example(), &ed);
    ed
}

/// Inserts `lines` into the front matter of `article`, right after its opening `---`, in
/// place of the lines that set the same keys (the example's card has a picture already).
fn front_matter(ed: &Path, article: &str, lines: &str) {
    let path = ed.join("articles").join(format!("{article}.md"));
    let text = std::fs::read_to_string(&path).expect("article");
    let keys: Vec<&str> = lines.lines().filter_map(|l| l.split(':').next()).collect();
    let kept: String = text
        .lines()
        .filter(|l| !keys.iter().any(|k| l.starts_with(&format!("{k}:"))))
        .map(|l| format!("{l}\n"))
        .collect();
    let text = kept.replacen("---\n", &format!("---\n{lines}"), 1);
    std::fs::write(path, text).expect("write article");
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, bytes).expect("write");
}

/// The `<img>` tags of an HTML document.
fn img_tags(html: &str) -> Vec<&str> {
    html.match_indices("<img ")
        .map(|(i, _)| &html[i..i + html[i..].find('>').expect("tag ends")])
        .collect()
}

fn attribute<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    Some(&tag[start..start + tag[start..].find('"')?])
}

/// Runs compose in `dir` and returns (exit code, stderr).
fn compose(dir: &Path, ed: &Path, extra: &[&str]) -> (i32, String) {
    let out = super::bulletin(dir)
        .args(extra)
        .arg("compose")
        .arg(ed)
        .output()
        .expect("run compose");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout),
    )
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join("out").join(SLUG).join(file)).expect("composed file")
}

#[test]
fn a_card_picture_is_as_wide_as_the_card_for_outlook() {
    // mrml 6 takes `padding="0 24px 16px"` for 0 on the left and right: the width attribute
    // (what Outlook uses) came out 624 in a 576 px card, and the picture overflowed it.
    let dir = tempfile::tempdir().expect("tempdir");
    let ed = edition(dir.path());
    front_matter(
        &ed,
        "what-is-glo-act",
        "image: \"https://newsletter.example.org/media/team.jpg\"\nimage_alt: \"The team\"\n",
    );
    let (code, err) = compose(dir.path(), &ed, &[]);
    assert_eq!(code, 0, "{err}");
    let html = read(dir.path(), "en/email.html");
    let tags = img_tags(&html);
    assert_eq!(tags.len(), 1, "{tags:?}");
    assert_eq!(attribute(tags[0], "width"), Some("576"), "{}", tags[0]);
}

#[test]
fn local_files_are_published_and_placed_in_every_layout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ed = edition(dir.path());
    write(
        &ed.join("images/field visit.jpg"),
        &pictures::camera_jpeg(2400, 1600, 1, true, 7),
    );
    write(
        &ed.join("images/logo.png"),
        &pictures::transparent_png(900, 600),
    );
    write(&ed.join("files/factsheet.pdf"), &pictures::pdf(1_234_567));
    front_matter(
        &ed,
        "what-is-glo-act",
        "image: \"images/field visit.jpg\"\nimage_alt: \"A field visit\"\n",
    );
    front_matter(
        &ed,
        "pillar-strategy",
        "image: images/logo.png\nimage_alt: \"The project logo\"\n",
    );
    let article = ed.join("articles/what-is-glo-act.md");
    let text = std::fs::read_to_string(&article).expect("article");
    let text = text
        .replace(
            "https://newsletter.example.org/documents/glo-act-factsheet.pdf",
            "files/factsheet.pdf",
        )
        .replace(
            "Want the essentials",
            "![The logo, small](images/logo.png)\n\nWant the essentials",
        );
    std::fs::write(&article, text).expect("write");
    let manifest = ed.join("edition.toml");
    let toml = std::fs::read_to_string(&manifest).expect("manifest");
    std::fs::write(
        &manifest,
        toml.replacen(
            "template = \"default\"\n",
            "template = \"default\"\nhero = \"images/field visit.jpg\"\nhero_alt = \"Colleagues on a field visit\"\n",
            1,
        ),
    )
    .expect("write manifest");

    let (code, err) = compose(dir.path(), &ed, &[]);
    assert_eq!(code, 0, "{err}");
    let html = read(dir.path(), "en/email.html");
    let tags = img_tags(&html);
    let src = |alt: &str| {
        let tag = tags
            .iter()
            .find(|t| attribute(t, "alt") == Some(alt))
            .unwrap_or_else(|| panic!("no picture `{alt}` in {tags:?}"));
        (
            attribute(tag, "src").expect("src").to_string(),
            attribute(tag, "width").map(str::to_string),
        )
    };
    // Card, header, grid tile (2 columns), Markdown: each at its own width.
    let (card, card_width) = src("A field visit");
    let (hero, hero_width) = src("Colleagues on a field visit");
    let (tile, tile_width) = src("The project logo");
    let (inline, _) = src("The logo, small");
    assert_eq!(card_width.as_deref(), Some("576"));
    assert_eq!(hero_width.as_deref(), Some("640"));
    assert_eq!(tile_width.as_deref(), Some("274"));
    for url in [&card, &hero, &tile, &inline] {
        assert!(url.starts_with(ASSETS_URL), "{url}");
    }
    assert_ne!(card, hero, "one picture, two widths, two files");
    assert!(
        card.ends_with(".jpg") && tile.ends_with(".png"),
        "{card} {tile}"
    );
    let assets = dir.path().join("out").join(SLUG).join("assets");
    let name = card.trim_start_matches(ASSETS_URL);
    let stem = name.rsplit_once('-').expect("hashed").0;
    assert_eq!(stem, "field-visit", "{name}");
    let (w, h) = image::image_dimensions(assets.join(name)).expect("published JPEG");
    assert_eq!((w, h), (1152, 768), "twice the card's width, same shape");

    // The factsheet: linked absolutely, with its kind and size, in both parts.
    let pdf = html
        .split("href=\"")
        .filter_map(|s| s.split('"').next())
        .find(|u| u.ends_with(".pdf"))
        .expect("a PDF link");
    assert!(pdf.starts_with(ASSETS_URL), "{pdf}");
    assert!(html.contains("(PDF, 1.2 MB)"), "size next to the link");
    let text = read(dir.path(), "en/email.txt");
    assert!(
        text.contains("GLO.ACT project factsheet (PDF, 1.2 MB)"),
        "{text}"
    );
    assert!(
        !html.contains("images/") && !html.contains("files/factsheet"),
        "no path left"
    );
}

#[test]
fn pictures_are_processed_once_and_again_when_the_crop_changes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ed = edition(dir.path());
    write(
        &ed.join("images/photo.jpg"),
        &pictures::camera_jpeg(1800, 1200, 1, false, 3),
    );
    front_matter(
        &ed,
        "what-is-glo-act",
        "image: images/photo.jpg\nimage_alt: \"A photo\"\n",
    );
    let assets = dir.path().join("out").join(SLUG).join("assets");
    let listing = || -> Vec<(String, std::time::SystemTime)> {
        let mut files: Vec<_> = std::fs::read_dir(&assets)
            .expect("assets folder")
            .flatten()
            .map(|e| {
                let modified = e.metadata().and_then(|m| m.modified()).expect("mtime");
                (e.file_name().to_string_lossy().into_owned(), modified)
            })
            .collect();
        files.sort();
        files
    };
    assert_eq!(compose(dir.path(), &ed, &[]).0, 0);
    let first = listing();
    assert!(
        first.iter().any(|(n, _)| n.starts_with("photo-")),
        "{first:?}"
    );
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert_eq!(compose(dir.path(), &ed, &[]).0, 0);
    assert_eq!(listing(), first, "the same file, not written again");

    front_matter(&ed, "what-is-glo-act", "image_focus: top\n");
    assert_eq!(compose(dir.path(), &ed, &[]).0, 0);
    let after = listing();
    assert_eq!(
        after.len(),
        first.len() + 1,
        "a crop is another picture: {after:?}"
    );
    let cropped = after
        .iter()
        .find(|(n, _)| !first.iter().any(|(f, _)| f == n))
        .expect("the cropped file");
    let (w, h) = image::image_dimensions(assets.join(&cropped.0)).expect("dimensions");
    assert_eq!((w, h), (1152, 768), "3:2");
}

#[test]
fn lint_names_the_file_and_line_of_each_local_file_problem() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ed = edition(dir.path());
    write(
        &ed.join("images/notes.jpg"),
        b"these are notes, not a picture",
    );
    write(
        &ed.join("images/ok.png"),
        &pictures::transparent_png(40, 40),
    );
    // Front matter (line 2 after the insertion), then the body.
    front_matter(
        &ed,
        "what-is-glo-act",
        "image: images/missing.jpg\nimage_alt: \"Missing\"\n",
    );
    front_matter(
        &ed,
        "pillar-strategy",
        "image: images/notes.jpg\nimage_alt: \"Notes\"\nimage_focus: middle\n",
    );
    let body = ed.join("articles/pillar-capacity.md");
    let text = std::fs::read_to_string(&body).expect("article")
        + "\n![](images/ok.png)\n\n[a file](../outside.pdf)\n";
    std::fs::write(&body, &text).expect("write");
    let lines = text.lines().count();

    let out = super::bulletin(dir.path())
        .args(["--json", "compose"])
        .arg(&ed)
        .output()
        .expect("run compose");
    assert_eq!(out.status.code(), Some(2));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    let findings = json["lint"]["findings"].as_array().expect("findings");
    let find = |code: &str| {
        findings
            .iter()
            .find(|f| f["code"] == code)
            .unwrap_or_else(|| panic!("no `{code}` in {findings:#?}"))
    };
    let at = |f: &serde_json::Value| {
        (
            f["file"]
                .as_str()
                .unwrap_or("")
                .rsplit('/')
                .next()
                .unwrap_or("")
                .to_string(),
            f["line"].as_u64(),
        )
    };
    let missing = find("asset-missing");
    assert_eq!(at(missing), ("what-is-glo-act.md".into(), Some(2)));
    assert!(
        missing["message"]
            .as_str()
            .unwrap_or("")
            .contains("images/missing.jpg")
    );
    let unreadable = find("asset-unreadable");
    assert_eq!(at(unreadable), ("pillar-strategy.md".into(), Some(2)));
    assert_eq!(
        at(find("image-focus")),
        ("pillar-strategy.md".into(), Some(4))
    );
    let alt = find("image-alt");
    assert_eq!(
        at(alt),
        ("pillar-capacity.md".into(), Some(lines as u64 - 2))
    );
    let outside = find("asset-path");
    assert_eq!(
        at(outside),
        ("pillar-capacity.md".into(), Some(lines as u64))
    );
}

#[test]
fn a_heavy_picture_and_a_heavy_email_are_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ed = edition(dir.path());
    // Noise does not compress: even at the lowest quality it stays heavy.
    let noisy = image::RgbImage::from_fn(1600, 1600, |x, y| {
        let v = (x.wrapping_mul(7919) ^ y.wrapping_mul(104_729)).wrapping_mul(2_654_435_761);
        image::Rgb([(v >> 24) as u8, (v >> 16) as u8, (v >> 8) as u8])
    });
    let mut bytes = Vec::new();
    image::DynamicImage::ImageRgb8(noisy)
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .expect("encode");
    write(&ed.join("images/noise.png"), &bytes);
    for article in ["pillar-strategy", "what-is-glo-act", "expected-outcomes"] {
        front_matter(
            &ed,
            article,
            "image: images/noise.png\nimage_alt: \"Noise\"\n",
        );
    }
    let manifest = ed.join("edition.toml");
    let toml = std::fs::read_to_string(&manifest).expect("manifest");
    let toml = toml.replacen(
        "template",
        "hero = \"images/noise.png\"\nhero_alt = \"Noise\"\ntemplate",
        1,
    );
    std::fs::write(&manifest, toml).expect("write manifest");
    let (code, out) = compose(dir.path(), &ed, &[]);
    assert_eq!(code, 0, "warnings only: {out}");
    assert!(
        out.contains("warning[image-size]") && out.contains("what-is-glo-act.md:2"),
        "{out}"
    );
    assert!(out.contains("warning[image-weight]"), "{out}");
}

#[test]
fn inbox_details_and_a_web_version_without_a_link_to_itself() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (code, err) = compose(dir.path(), &super::example(), &[]);
    assert_eq!(code, 0, "{err}");
    let html = read(dir.path(), "en/email.html");
    let preheader = "supports 13 countries.&#847;&zwnj;&nbsp;&#847;&zwnj;&nbsp;";
    assert!(html.contains(preheader), "the preheader is padded");
    assert!(html.contains("name=\"format-detection\" content=\"telephone=no, date=no, address=no"));
    assert!(html.contains("a[x-apple-data-detectors]"));
    assert!(html.contains("hyphens: auto") || html.contains("hyphens:auto"));
    let own = "https://newsletter.example.org/archive/glo-act-special-edition/en/";
    assert!(html.contains(own), "the email links its web version");
    let archive = read(dir.path(), "en/archive.html");
    assert!(
        !archive.contains(own),
        "the web version does not link to itself"
    );
    assert!(
        archive.contains("/unsubscribe"),
        "the rest of the footer stays"
    );
}

#[test]
fn the_preview_file_shows_the_processed_pictures_from_the_disk() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = super::bulletin(dir.path())
        .arg("preview")
        .arg(super::example())
        .output()
        .expect("run preview");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let page = read(dir.path(), "preview.html");
    assert!(!page.contains(ASSETS_URL), "no picture from the web server");
    let assets =
        std::path::absolute(dir.path().join("out").join(SLUG).join("assets")).expect("absolute");
    let local = format!("file://{}/", assets.display());
    let start = page.find(&local).expect("the diagram from the disk");
    let name: String = page[start + local.len()..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.'))
        .collect();
    assert!(
        name.starts_with("six-pillars-") && name.ends_with(".png"),
        "{name}"
    );
    assert!(assets.join(&name).is_file(), "{name} was published");
}

#[test]
fn the_preview_server_serves_the_processed_pictures_and_nothing_else() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = super::preview::start(dir.path(), &super::example());
    let (status, page) = super::preview::get(&server.addr, "/");
    assert_eq!(status, 200);
    assert!(!page.contains(ASSETS_URL), "no picture from the web server");
    let start = page
        .find("/assets/six-pillars-")
        .expect("the diagram, served here");
    let path: String = page[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '/'))
        .collect();
    let (status, body) = super::preview::get(&server.addr, &path);
    assert_eq!(status, 200, "{path}");
    assert!(
        body.starts_with("\u{fffd}PNG"),
        "a PNG: {}",
        &body[..body.len().min(8)]
    );
    std::fs::write(dir.path().join("secret.txt"), "secret").expect("write");
    for bad in [
        "/assets/..%2F..%2F..%2Fsecret.txt",
        "/assets/../secret.txt",
        "/assets/.x",
    ] {
        let (status, body) = super::preview::get(&server.addr, bad);
        assert_eq!(status, 404, "{bad}");
        assert!(!body.contains("secret"), "{bad}");
    }
}
