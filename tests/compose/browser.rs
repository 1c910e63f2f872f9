//! The email and the preview page in a real browser: Debian's headless Chromium. At 375 px
//! (a phone) the email must not scroll sideways; screenshots of each are kept under
//! target/screenshots/ for a person to look at.
//!
//! These tests fail, never skip, when Chromium is missing: CI installs it (`apt-get install
//! chromium`), and a browser check that silently does not run proves nothing.

use std::path::{Path, PathBuf};

pub(crate) fn screenshots() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .map_or_else(|| PathBuf::from("target"), Path::to_path_buf)
        .join("screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot folder");
    dir
}

/// Runs headless Chromium with a throwaway profile and the network features off.
fn run_chromium(args: &[&str], url: &str) -> String {
    bulletin_testkit::chromium::run(args, url)
}

pub(crate) fn screenshot(url: &str, width: u32, height: u32, file: &Path) {
    let _ = std::fs::remove_file(file);
    run_chromium(
        &[
            &format!("--window-size={width},{height}"),
            &format!("--screenshot={}", file.display()),
        ],
        url,
    );
    let size = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
    assert!(
        size > 10_000,
        "{} looks empty ({size} bytes)",
        file.display()
    );
}

fn escape_attr(s: &str) -> String {
    s.replace('&', "&amp;").replace('"', "&quot;")
}

/// Loads `html` in an iframe `width` px wide (headless windows cannot be narrower than 500
/// px), calls the page's JavaScript function `probe(frame)` (defined by `script`) once it has
/// loaded, and returns the text that function put into `<pre id="probe">`, unescaped.
pub(crate) fn probe_frame(html: &str, width: u32, script: &str, dir: &Path) -> String {
    let host = format!(
        "<!doctype html><html><body style=\"margin:0\"><iframe id=\"f\" style=\"width:{width}px;height:4000px;border:0\" srcdoc=\"{}\"></iframe>\
         <script>{script}\ndocument.getElementById('f').addEventListener('load',function(){{probe(this);}});</script></body></html>",
        escape_attr(html)
    );
    let path = dir.join(format!("probe-{width}.html"));
    std::fs::write(&path, host).expect("write probe");
    let dom = run_chromium(
        &[
            "--window-size=1400,2000",
            "--virtual-time-budget=8000",
            "--dump-dom",
        ],
        &format!("file://{}", path.display()),
    );
    let probe = dom
        .split("<pre id=\"probe\">")
        .nth(1)
        .and_then(|r| r.split("</pre>").next())
        .unwrap_or_else(|| {
            panic!(
                "the probe did not run; DOM:\n{}",
                &dom[..dom.len().min(2000)]
            )
        });
    probe
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Loads `html` in a 375 px wide frame and returns the document's (scrollWidth, clientWidth,
/// innerWidth).
fn measure_at_375(html: &str, dir: &Path) -> (u32, u32, u32) {
    let probe = probe_frame(
        html,
        375,
        "function probe(f){var d=f.contentDocument.documentElement;\
         var p=document.createElement('pre');p.id='probe';p.textContent=d.scrollWidth+' '+d.clientWidth+' '+f.contentWindow.innerWidth;\
         document.body.appendChild(p);}",
        dir,
    );
    let n: Vec<u32> = probe
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    assert_eq!(n.len(), 3, "probe output `{probe}`");
    (n[0], n[1], n[2])
}

#[test]
fn email_fits_a_phone_and_screenshots_are_kept() {
    let dir = super::composed_example();
    let shots = screenshots();
    for lang in ["ar", "en", "es", "fr"] {
        let email = dir
            .path()
            .join("out/glo-act-special-edition")
            .join(lang)
            .join("email.html");
        let html = std::fs::read_to_string(&email).expect("email");
        let (scroll, client, inner) = measure_at_375(&html, dir.path());
        assert_eq!(inner, 375, "{lang}: the frame is a phone's width");
        assert!(
            scroll <= client,
            "{lang}: horizontal scroll at 375 px (scrollWidth {scroll} > clientWidth {client})"
        );
        let url = format!("file://{}", email.display());
        screenshot(
            &url,
            375,
            4200,
            &shots.join(format!("email-{lang}-375.png")),
        );
        screenshot(
            &url,
            700,
            3400,
            &shots.join(format!("email-{lang}-700.png")),
        );
    }
}

#[test]
fn a_too_wide_email_is_caught() {
    // The check itself must be able to fail: a 600 px table scrolls on a phone.
    let dir = tempfile::tempdir().expect("tempdir");
    let (scroll, client, _) = measure_at_375(
        "<!doctype html><html><body style=\"margin:0\"><table style=\"width:600px\"><tr><td>x</td></tr></table></body></html>",
        dir.path(),
    );
    assert!(
        scroll > client,
        "scrollWidth {scroll}, clientWidth {client}"
    );
}

#[test]
fn preview_page_screenshot() {
    let dir = tempfile::tempdir().expect("tempdir");
    super::bulletin(dir.path())
        .args(["preview", "--out", "preview.html"])
        .arg(super::example())
        .assert()
        .success();
    let page = dir.path().join("preview.html");
    let file = screenshots().join("preview-page.png");
    screenshot(&format!("file://{}", page.display()), 1400, 1600, &file);
}

/// What the preview page looks like to a browser window `width` px wide, as measured by the
/// page's own layout after its frames were fitted.
#[derive(Debug)]
struct PageLayout {
    /// The page scrolls sideways (scrollWidth > clientWidth).
    scrolls_sideways: bool,
    /// Elements whose right edge is past the window, outside any clipping frame box.
    off_screen: Vec<String>,
    /// Per visible email frame: (title, logical width seen inside, scale, fits its content).
    frames: Vec<(String, u32, f64, bool)>,
    /// Per `<img>` of the images-off frame: (has a `src`, naturalWidth).
    images_off: Vec<(bool, u32)>,
}

/// Loads the preview page in a frame `width` px wide, opens the images-off views, and measures.
fn preview_layout(page_html: &str, width: u32, dir: &Path) -> PageLayout {
    let probe = r#"
      function probe(f){
        var w=f.contentWindow, d=f.contentDocument;
        Array.prototype.forEach.call(d.querySelectorAll('details.images-off'),function(x){x.open=true;});
        setTimeout(function(){
          var out={sideways:d.documentElement.scrollWidth>d.documentElement.clientWidth,off:[],frames:[],off_images:[]};
          Array.prototype.forEach.call(d.body.querySelectorAll('*'),function(e){
            if(e.closest('.viewport')&&e.tagName!=='DIV')return;
            var r=e.getBoundingClientRect();
            if(r.width>0&&r.right>w.innerWidth+0.5)out.off.push(e.tagName+'.'+e.className+' right='+Math.round(r.right));
          });
          Array.prototype.forEach.call(d.querySelectorAll('.viewport iframe'),function(x){
            if(!x.offsetParent)return;
            var inner=x.contentDocument.documentElement;
            out.frames.push([x.title,x.contentWindow.innerWidth,+(x.getAttribute('data-scale')||0),
              inner.scrollHeight<=x.clientHeight+1&&x.clientHeight>=inner.scrollHeight-1]);
          });
          Array.prototype.forEach.call(d.querySelectorAll('details.images-off iframe'),function(x){
            Array.prototype.forEach.call(x.contentDocument.images,function(i){out.off_images.push([i.hasAttribute('src'),i.naturalWidth]);});
          });
          var p=document.createElement('pre');p.id='probe';p.textContent=JSON.stringify(out);document.body.appendChild(p);
        },500);
      }"#;
    let json = probe_frame(page_html, width, probe, dir);
    let v: serde_json::Value = serde_json::from_str(&json).expect("probe JSON");
    let list = |k: &str| v[k].as_array().cloned().unwrap_or_default();
    PageLayout {
        scrolls_sideways: v["sideways"].as_bool().expect("sideways"),
        off_screen: list("off")
            .iter()
            .map(|x| x.as_str().unwrap_or_default().to_string())
            .collect(),
        frames: list("frames")
            .iter()
            .map(|x| {
                (
                    x[0].as_str().unwrap_or_default().to_string(),
                    x[1].as_u64().unwrap_or(0) as u32,
                    x[2].as_f64().unwrap_or(0.0),
                    x[3].as_bool().unwrap_or(false),
                )
            })
            .collect(),
        images_off: list("off_images")
            .iter()
            .map(|x| {
                (
                    x[0].as_bool().unwrap_or(true),
                    x[1].as_u64().unwrap_or(0) as u32,
                )
            })
            .collect(),
    }
}

#[test]
fn the_preview_page_fits_a_phone_and_a_laptop_with_frames_as_tall_as_their_email() {
    let dir = tempfile::tempdir().expect("tempdir");
    let edition = super::fixture("minimal");
    super::bulletin(dir.path())
        .args(["preview", "--out", "p.html"])
        .arg(&edition)
        .assert()
        .success();
    let page = std::fs::read_to_string(dir.path().join("p.html")).expect("page");
    for (width, scaled) in [(375, true), (1280, false)] {
        let layout = preview_layout(&page, width, dir.path());
        assert!(
            !layout.scrolls_sideways && layout.off_screen.is_empty(),
            "{width} px: off-screen {:?}",
            layout.off_screen
        );
        // Two languages, each desktop, phone and images off.
        assert_eq!(layout.frames.len(), 6, "{width} px: {:?}", layout.frames);
        for (title, inner, scale, fits) in &layout.frames {
            let logical = if title.ends_with("phone") { 375 } else { 700 };
            assert_eq!(
                *inner, logical,
                "{width} px, {title}: laid out at its own width"
            );
            assert!(
                *fits,
                "{width} px, {title}: the frame is shorter than its email"
            );
            assert!(
                *scale > 0.0,
                "{width} px, {title}: the page's script did not fit it"
            );
            if scaled {
                assert!(*scale < 1.0, "{width} px, {title}: scaled to fit the phone");
            } else {
                assert!((scale - 1.0).abs() < 1e-9, "{width} px, {title}: full size");
            }
        }
        assert_eq!(layout.images_off.len(), 2, "one image per language");
        assert!(
            layout
                .images_off
                .iter()
                .all(|(src, natural)| !src && *natural == 0),
            "images off loads nothing: {:?}",
            layout.images_off
        );
    }
    let host = dir.path().join("probe-375.html");
    screenshot(
        &format!("file://{}", host.display()),
        500,
        2400,
        &screenshots().join("preview-page-375.png"),
    );
}

#[test]
fn a_page_wider_than_the_phone_is_caught() {
    // The layout probe itself must be able to fail: a fixed 700 px box overflows at 375 px.
    let dir = tempfile::tempdir().expect("tempdir");
    let layout = preview_layout(
        "<!doctype html><html><body><div style=\"width:700px\">wide</div></body></html>",
        375,
        dir.path(),
    );
    assert!(layout.scrolls_sideways, "{layout:?}");
    assert!(!layout.off_screen.is_empty(), "{layout:?}");
}
