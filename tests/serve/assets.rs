//! The #13 end-to-end check: an edition holding a 4000×3000 camera JPEG (EXIF orientation 6
//! and a GPS position), a transparent PNG and a PDF is composed against a running `serve`;
//! every URL the email names is fetched over real HTTP and the published files are read back
//! (upright, at most 1200 px wide, no EXIF, transparency kept, the PDF unchanged); the email
//! is loaded in headless Chromium at desktop and phone widths with every picture from the
//! served URLs; and no request reaches a file outside the published folder.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use bulletin_testkit::{chromium, pictures};
use image::ImageDecoder;

use crate::support::{Project, SECRET, Server, bulletin};

const SLUG: &str = "glo-act-special-edition";

/// (status, headers, body) of one GET, the body as bytes.
fn get(addr: SocketAddr, path: &str) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read response");
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete head");
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, raw[end + 4..].to_vec())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

/// The example edition with a camera photo on its first card, a transparent PNG on a grid
/// tile and its factsheet as a local PDF.
fn edition_with_local_files(project: &Project) -> std::path::PathBuf {
    let ed = project.path().join("edition");
    bulletin_testkit::copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("editions")
            .join(SLUG),
        &ed,
    );
    let put = |name: &str, bytes: &[u8]| {
        let path = ed.join(name);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, bytes).expect("write");
    };
    put(
        "images/field-visit.jpg",
        &pictures::camera_jpeg(4000, 3000, 6, true, 11),
    );
    put("images/diagram.png", &pictures::transparent_png(1000, 700));
    put("files/factsheet.pdf", &pictures::pdf(200_000));
    let edit = |article: &str, front: &str, from: &str, to: &str| {
        let path = ed.join("articles").join(format!("{article}.md"));
        let text = std::fs::read_to_string(&path).expect("article");
        // The example's card has a picture of its own: this one replaces it.
        let text: String = text
            .lines()
            .filter(|l| !l.starts_with("image:") && !l.starts_with("image_alt:"))
            .map(|l| format!("{l}\n"))
            .collect();
        let text = text
            .replacen("---\n", &format!("---\n{front}"), 1)
            .replace(from, to);
        std::fs::write(path, text).expect("write article");
    };
    edit(
        "what-is-glo-act",
        "image: images/field-visit.jpg\nimage_alt: \"Colleagues on a field visit\"\n",
        "https://newsletter.example.org/documents/glo-act-factsheet.pdf",
        "files/factsheet.pdf",
    );
    edit(
        "pillar-strategy",
        "image: images/diagram.png\nimage_alt: \"The six pillars as a diagram\"\n",
        "",
        "",
    );
    ed
}

/// Every `src` of an `<img>` and every `href` ending in `.pdf`.
fn linked(html: &str) -> (Vec<String>, Vec<String>) {
    let value = |text: &str, attr: &str| -> Option<String> {
        let rest = text.split(attr).nth(1)?;
        rest.split('"').next().map(str::to_string)
    };
    let images = html
        .split("<img ")
        .skip(1)
        .filter_map(|t| value(t.split('>').next().unwrap_or(""), "src=\""))
        .collect();
    let pdfs = html
        .split("href=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .filter(|u| u.ends_with(".pdf"))
        .map(str::to_string)
        .collect();
    (images, pdfs)
}

#[test]
fn local_pictures_and_documents_reach_readers_through_serve() {
    let project = Project::new();
    project.lists(&["news"]);
    let server = Server::start(&project, &[]);
    let base = format!("http://{}", server.addr);
    let ed = edition_with_local_files(&project);
    let out = bulletin(project.path())
        .env("BULLETIN_DATABASE_URL", project.database_url())
        .arg("compose")
        .arg(&ed)
        .env("BULLETIN_SECRET", SECRET)
        .env("BULLETIN_LIST_PUBLIC_URL", &base)
        .output()
        .expect("compose");
    assert!(
        out.status.success(),
        "compose: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let email = project.path().join("out").join(SLUG).join("en/email.html");
    let html = std::fs::read_to_string(&email).expect("email.html");
    let (images, mut pdfs) = linked(&html);
    assert_eq!(images.len(), 2, "{images:?}");
    let prefix = format!("{base}/archive/{SLUG}/assets/");
    // Other articles link PDFs on the web; the local one is linked wherever it was named.
    pdfs.retain(|u| u.starts_with(&base));
    pdfs.dedup();
    assert_eq!(pdfs.len(), 1, "{pdfs:?}");

    for url in images.iter().chain(&pdfs) {
        assert!(url.starts_with(&prefix), "absolute and served: {url}");
        let (status, headers, body) = get(server.addr, &url[base.len()..]);
        assert_eq!(status, 200, "{url}");
        assert_eq!(
            header(&headers, "cache-control"),
            "public, max-age=31536000, immutable",
            "{url}"
        );
        assert_eq!(header(&headers, "x-content-type-options"), "nosniff");
        match url.rsplit_once('.').map(|(_, e)| e) {
            Some("jpg") => {
                assert_eq!(header(&headers, "content-type"), "image/jpeg");
                check_photo(&body);
            }
            Some("png") => {
                assert_eq!(header(&headers, "content-type"), "image/png");
                let png = image::load_from_memory(&body).expect("a PNG");
                assert!(png.color().has_alpha(), "transparency kept");
                assert!(png.to_rgba8().pixels().any(|p| p[3] == 0));
                assert_eq!(png.width(), 548, "twice a two-column tile");
            }
            _ => {
                assert_eq!(header(&headers, "content-type"), "application/pdf");
                assert_eq!(body, pictures::pdf(200_000), "the PDF as it was");
            }
        }
    }
    let size = pictures::pdf(200_000).len().div_ceil(1000);
    assert!(
        html.contains(&format!("(PDF, {size} KB)")),
        "the size beside the link"
    );

    no_way_out(&project, &server);
    every_picture_loads_in_chromium(&html, project.path());
}

/// The published photo: upright (orientation 6 applied: the marker is now top right),
/// at most 1200 px wide, and without any EXIF (so without the GPS position).
fn check_photo(bytes: &[u8]) {
    assert!(
        !bytes.windows(6).any(|w| w == b"Exif\0\0"),
        "no EXIF segment in the published JPEG"
    );
    let mut decoder =
        image::codecs::jpeg::JpegDecoder::new(std::io::Cursor::new(bytes)).expect("a JPEG");
    assert_eq!(decoder.exif_metadata().expect("metadata"), None);
    let photo = image::load_from_memory(bytes).expect("decodes").to_rgb8();
    let (w, h) = photo.dimensions();
    assert!(w <= 1200, "{w} px wide");
    assert_eq!((w, h), (1152, 1536), "portrait: turned upright");
    let near = |x: u32, y: u32| {
        let p = photo.get_pixel(x, y);
        p.0.iter()
            .zip(pictures::MARKER)
            .all(|(a, b)| a.abs_diff(b) < 40)
    };
    assert!(
        near(w * 3 / 4, h / 8),
        "the stored top-left is now top-right"
    );
    assert!(!near(w / 4, h / 8), "and no longer top-left");
    assert!(bytes.len() < 300_000, "{} bytes", bytes.len());
}

/// Requests that try to leave the assets folder get nothing.
fn no_way_out(project: &Project, server: &Server) {
    let secret = "the content of a file outside the published folder";
    std::fs::write(project.path().join("secret.txt"), secret).expect("write");
    std::fs::write(project.path().join("out/secret.txt"), secret).expect("write");
    let assets = project.path().join("out").join(SLUG).join("assets");
    #[cfg(unix)]
    std::os::unix::fs::symlink(project.path().join("secret.txt"), assets.join("link.txt"))
        .expect("symlink");
    std::fs::write(assets.join(".hidden.txt"), secret).expect("write");
    for path in [
        format!("/archive/{SLUG}/assets/../../secret.txt"),
        format!("/archive/{SLUG}/assets/..%2F..%2Fsecret.txt"),
        format!("/archive/{SLUG}/assets/%2e%2e%2f%2e%2e%2fsecret.txt"),
        format!("/archive/{SLUG}/assets/..%5C..%5Csecret.txt"),
        "/archive/../assets/secret.txt".to_string(),
        "/archive/..%2F..%2F/assets/secret.txt".to_string(),
        "/archive/../../secret.txt".to_string(),
        format!("/archive/{SLUG}/assets/link.txt"),
        format!("/archive/{SLUG}/assets/.hidden.txt"),
        format!("/archive/{SLUG}/assets/%2Fetc%2Fpasswd"),
        "/archive/%2E%2E/assets/secret.txt".to_string(),
    ] {
        let (status, _, body) = get(server.addr, &path);
        assert!(status == 404 || status == 400, "{path}: status {status}");
        let body = String::from_utf8_lossy(&body);
        assert!(!body.contains(secret), "{path} leaked the file");
        assert!(!body.contains("root:"), "{path} leaked /etc/passwd");
    }
}

/// The email in two frames, 700 and 375 px wide, pictures from the server: each must load
/// (`naturalWidth > 0`) and fit its frame.
fn every_picture_loads_in_chromium(html: &str, dir: &Path) {
    let escaped = html.replace('&', "&amp;").replace('"', "&quot;");
    let host = format!(
        "<!doctype html><html><body style=\"margin:0\">\
         <iframe id=\"desktop\" style=\"width:700px;height:3000px;border:0\" srcdoc=\"{escaped}\"></iframe>\
         <iframe id=\"phone\" style=\"width:375px;height:3000px;border:0\" srcdoc=\"{escaped}\"></iframe>\
         <script>\
         function report(){{var out=[];['desktop','phone'].forEach(function(id){{\
           var f=document.getElementById(id),d=f.contentDocument,imgs=[].slice.call(d.images);\
           var loaded=imgs.filter(function(i){{return i.complete&&i.naturalWidth>0;}}).length;\
           var widest=Math.max.apply(null,imgs.map(function(i){{return i.getBoundingClientRect().right;}}));\
           out.push(id+' '+imgs.length+' '+loaded+' '+Math.ceil(widest)+' '+d.documentElement.clientWidth);}});\
           var p=document.createElement('pre');p.id='probe';p.textContent=out.join(';');document.body.appendChild(p);}}\
         window.addEventListener('load',function(){{setTimeout(report,500);}});\
         </script></body></html>"
    );
    let page = dir.join("pictures-probe.html");
    std::fs::write(&page, host).expect("write probe");
    let dom = chromium::dump_dom(
        &["--window-size=1200,3000", "--virtual-time-budget=15000"],
        &format!("file://{}", page.display()),
    );
    let probe = dom
        .split("<pre id=\"probe\">")
        .nth(1)
        .and_then(|r| r.split('<').next())
        .unwrap_or_else(|| panic!("the probe did not run:\n{}", &dom[..dom.len().min(1500)]));
    for frame in probe.split(';') {
        let f: Vec<&str> = frame.split_whitespace().collect();
        assert_eq!(f.len(), 5, "{probe}");
        let n = |i: usize| f[i].parse::<u32>().unwrap_or_else(|_| panic!("{probe}"));
        assert_eq!(n(1), 2, "{}: two pictures ({probe})", f[0]);
        assert_eq!(n(2), n(1), "{}: every picture loaded ({probe})", f[0]);
        assert!(
            n(3) <= n(4),
            "{}: a picture overflows the column ({probe})",
            f[0]
        );
    }
}
