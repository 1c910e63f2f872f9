//! The email and the preview page in a real browser: Debian's headless Chromium. At 375 px
//! (a phone) the email must not scroll sideways; screenshots of each are kept under
//! target/screenshots/ for a person to look at.
//!
//! These tests fail, never skip, when Chromium is missing: CI installs it (`apt-get install
//! chromium`), and a browser check that silently does not run proves nothing.

use std::path::{Path, PathBuf};

fn screenshots() -> PathBuf {
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

fn screenshot(url: &str, width: u32, height: u32, file: &Path) {
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

/// Loads `html` in a 375 px wide frame (headless windows cannot be narrower than 500 px) and
/// returns the document's (scrollWidth, clientWidth, innerWidth).
fn measure_at_375(html: &str, dir: &Path) -> (u32, u32, u32) {
    let host = format!(
        "<!doctype html><html><body style=\"margin:0\"><iframe id=\"f\" style=\"width:375px;height:3000px;border:0\" srcdoc=\"{}\"></iframe>\
         <script>document.getElementById('f').addEventListener('load',function(){{var d=this.contentDocument.documentElement;\
         var p=document.createElement('pre');p.id='probe';p.textContent=d.scrollWidth+' '+d.clientWidth+' '+this.contentWindow.innerWidth;\
         document.body.appendChild(p);}});</script></body></html>",
        escape_attr(html)
    );
    let path = dir.join("probe.html");
    std::fs::write(&path, host).expect("write probe");
    let dom = run_chromium(
        &[
            "--window-size=800,2000",
            "--virtual-time-budget=5000",
            "--dump-dom",
        ],
        &format!("file://{}", path.display()),
    );
    let probe = dom
        .split("<pre id=\"probe\">")
        .nth(1)
        .and_then(|r| r.split('<').next())
        .unwrap_or_else(|| {
            panic!(
                "the probe did not run; DOM:\n{}",
                &dom[..dom.len().min(2000)]
            )
        });
    let n: Vec<u32> = probe
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    assert_eq!(n.len(), 3, "probe output `{probe}`");
    (n[0], n[1], n[2])
}

#[test]
fn email_fits_a_phone_and_screenshots_are_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    super::bulletin(dir.path())
        .arg("compose")
        .arg(super::example())
        .assert()
        .success();
    let shots = screenshots();
    for lang in ["en", "fr"] {
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
