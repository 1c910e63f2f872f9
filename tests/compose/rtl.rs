//! The Arabic variant of the example edition in a real headless Chromium, read through
//! computed styles and layout boxes (not by searching the markup): every text block of the
//! translated content runs right to left and is aligned right, the grid's columns are
//! mirrored, list items are indented from the right, and each part left in English carries its
//! own `lang` and `dir`. Screenshots at 600 and 375 px are kept under target/screenshots/.

use std::path::Path;

use serde_json::Value;

use super::browser::{probe_frame, screenshot, screenshots};

/// Runs in the host page once the email (in an iframe `width` px wide) has loaded, and writes
/// what it measured as JSON into `<pre id="probe">`.
const PROBE: &str = r#"
function probe(frame) {
  var d = frame.contentDocument, w = frame.contentWindow;
  var r = {lang: d.documentElement.getAttribute('lang'), dir: d.documentElement.getAttribute('dir'),
           blocks: 0, bad: [], footer: 0, fallback: [], tiles: [], lists: 0, bad_lists: []};
  var all = d.body.querySelectorAll('*');
  for (var i = 0; i < all.length; i++) {
    var el = all[i], own = '';
    for (var c = el.firstChild; c; c = c.nextSibling) { if (c.nodeType === 3) own += c.nodeValue; }
    if (!own.trim() || el.getClientRects().length === 0) continue;
    // A subscriber's name is isolated on purpose: its direction is its own.
    if (el.closest('bdi, [dir=auto]')) continue;
    var part = el.closest('[lang]');
    var cs = w.getComputedStyle(el);
    var info = {tag: el.tagName, text: own.trim().slice(0, 40), dir: cs.direction, align: cs.textAlign,
                lang: part.getAttribute('lang'), part_dir: part.getAttribute('dir')};
    if (info.lang !== 'ar') { r.fallback.push(info); continue; }
    r.blocks++;
    var right = info.align === 'right' || info.align === '-webkit-right' || (info.align === 'start' && info.dir === 'rtl');
    if (el.closest('.footer')) {
      // The footer is centred, and the "view in browser" line sits at the line's end.
      r.footer++;
      right = right || /center|left/.test(info.align);
    }
    if (info.dir !== 'rtl' || !right) r.bad.push(info);
  }
  var tiles = d.querySelectorAll('.tile');
  for (var t = 0; t < tiles.length; t++) {
    var b = tiles[t].getBoundingClientRect();
    tiles[t].querySelector('h3') && r.tiles.push({left: Math.round(b.left), top: Math.round(b.top),
      title: tiles[t].querySelector('h3').textContent.slice(0, 30)});
  }
  var items = d.querySelectorAll('li');
  for (var k = 0; k < items.length; k++) {
    var li = items[k], list = li.parentElement;
    if (li.closest('[lang]').getAttribute('lang') !== 'ar') continue;
    r.lists++;
    var lb = li.getBoundingClientRect(), ub = list.getBoundingClientRect();
    var indentRight = ub.right - lb.right, indentLeft = lb.left - ub.left;
    if (indentRight < 15 || indentLeft > 2) r.bad_lists.push({text: li.textContent.slice(0, 30), right: indentRight, left: indentLeft});
  }
  var p = document.createElement('pre'); p.id = 'probe'; p.textContent = JSON.stringify(r);
  document.body.appendChild(p);
}
"#;

/// Loads `html` in a frame `width` px wide and returns what [`PROBE`] measured.
fn measure(html: &str, width: u32, dir: &Path) -> Value {
    let json = probe_frame(html, width, PROBE, dir);
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("probe output {json}: {e}"))
}

#[test]
fn the_arabic_email_runs_right_to_left_in_chromium_and_english_parts_keep_their_own_direction() {
    let dir = super::composed_example();
    let email = dir.path().join("out/glo-act-special-edition/ar/email.html");
    let html = std::fs::read_to_string(&email).expect("email");
    for width in [600, 375] {
        let m = measure(&html, width, dir.path());
        assert_eq!(
            (&m["lang"], &m["dir"]),
            (&Value::from("ar"), &Value::from("rtl"))
        );
        let blocks = m["blocks"].as_u64().unwrap_or(0);
        assert!(
            blocks > 40,
            "{width} px: only {blocks} Arabic text blocks found: {m}"
        );
        assert_eq!(
            m["bad"].as_array().map(Vec::len),
            Some(0),
            "{width} px: Arabic text blocks not right to left and right-aligned: {:#}",
            m["bad"]
        );
        // Five untranslated articles are shown in English, each inside its own lang/dir.
        let fallback = m["fallback"].as_array().expect("fallback list");
        assert!(fallback.len() >= 15, "{width} px: {fallback:#?}");
        for part in fallback {
            assert_eq!(part["lang"], "en", "{part}");
            assert_eq!(part["part_dir"], "ltr", "{part}");
            assert_eq!(part["dir"], "ltr", "{part}");
            assert!(
                matches!(
                    part["align"].as_str(),
                    Some("left" | "start" | "-webkit-left")
                ),
                "{width} px: an English part is not left-aligned: {part}"
            );
        }
        assert!(m["lists"].as_u64().unwrap_or(0) >= 3, "{m}");
        assert_eq!(
            m["bad_lists"].as_array().map(Vec::len),
            Some(0),
            "{width} px: list items not indented from the right: {}",
            m["bad_lists"]
        );
        // The grid's first article (pillar 1, in Arabic) is on the right of the second at
        // desktop width; on a phone the tiles stack in reading order.
        let tiles = m["tiles"].as_array().expect("tiles");
        let (first, second) = (&tiles[0], &tiles[1]);
        assert!(
            first["title"]
                .as_str()
                .is_some_and(|t| t.contains("الركيزة 1")),
            "{first}"
        );
        let (l1, l2) = (first["left"].as_i64(), second["left"].as_i64());
        let (t1, t2) = (first["top"].as_i64(), second["top"].as_i64());
        if width == 600 {
            assert!(
                l1 > l2 && t1 == t2,
                "600 px: grid not mirrored: {first} {second}"
            );
        } else {
            assert!(
                t1 < t2,
                "375 px: tiles not stacked in order: {first} {second}"
            );
        }
    }
    let shots = screenshots();
    let url = format!("file://{}", email.display());
    screenshot(&url, 600, 4200, &shots.join("email-ar-600.png"));
    screenshot(&url, 375, 5200, &shots.join("email-ar-375.png"));
}
