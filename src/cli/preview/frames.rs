//! The email frames of the preview page: the email at desktop and phone widths and with images
//! off, each frame as tall as its email and scaled down (never reflowed) when the window is
//! narrower than the width it shows, so the page works on a laptop and on a phone.
//!
//! The frames are `srcdoc` iframes: the email's own styles cannot leak into the page, and the
//! page's script may measure them because a `srcdoc` document shares the page's origin. The
//! sandbox keeps any script out of the email (there is none, but the page should not depend on
//! the sanitiser for that) while still letting the page read the frame's height.

use super::esc;

/// Logical widths of the frames: what a desktop client's reading pane and a phone show.
pub(super) const DESKTOP_WIDTH: u32 = 700;
/// A phone in portrait (iPhone 6–8, many Android phones).
pub(super) const PHONE_WIDTH: u32 = 375;

/// The page's styles for frames. Without the script the frames are 80% of the window tall and
/// their box scrolls instead of the page; with it they are sized exactly.
pub(super) const FRAME_STYLE: &str = r#"
.frames { display: flex; flex-wrap: wrap; gap: 24px; align-items: flex-start; }
figure.frame { margin: 0; max-width: 100%; }
.viewport { border: 1px solid #cbd2d9; background: #fff; border-radius: 6px; overflow: auto; max-width: 100%; }
.viewport iframe { display: block; border: 0; height: 80vh; transform-origin: 0 0; }
.viewport.fitted { overflow: hidden; }
details.images-off > .frames { margin-top: 10px; }
"#;

/// Sizes every frame to its email's height and scales it to the width available: on the load
/// of each frame, when the window is resized, and when a closed `<details>` opens (a frame in a
/// closed one has no layout to measure). The scale is written to `data-scale` for tests.
pub(super) const FIT_SCRIPT: &str = r#"<script>
(function(){
  function fit(f){
    var d=f.contentDocument; if(!d||!d.documentElement||!f.offsetParent)return;
    var v=f.parentNode, w=+f.getAttribute('width');
    var avail=v.parentNode.parentNode.clientWidth-2;
    var s=Math.min(1,avail/w);
    f.style.height='0px';
    var h=Math.max(d.documentElement.scrollHeight,d.body?d.body.scrollHeight:0);
    f.style.height=h+'px';
    f.style.transform=s<1?'scale('+s+')':'';
    v.style.width=Math.floor(w*s)+2+'px';
    v.style.height=Math.ceil(h*s)+2+'px';
    v.className='viewport fitted';
    f.setAttribute('data-scale',s.toFixed(3));
    f.setAttribute('data-content-height',h);
  }
  function all(){Array.prototype.forEach.call(document.querySelectorAll('.viewport iframe'),fit);}
  Array.prototype.forEach.call(document.querySelectorAll('.viewport iframe'),function(f){
    f.addEventListener('load',function(){fit(f);});
    if(f.contentDocument&&f.contentDocument.readyState==='complete')fit(f);
  });
  Array.prototype.forEach.call(document.querySelectorAll('details'),function(d){
    d.addEventListener('toggle',all);
  });
  window.addEventListener('resize',all);
})();
</script>"#;

/// The frames of one language: desktop and phone side by side (stacked on a narrow window),
/// then the images-off view in a `<details>` with the count of images and of those without
/// alt text, which is all a reader whose client blocks images gets of them.
pub(super) fn frames(lang: &str, html: &str) -> String {
    let l = esc(lang);
    let shown = for_frame(html);
    let off = ImagesOff::of(&shown);
    let missing = if off.without_alt == 0 {
        String::new()
    } else {
        format!(
            ", <span class=\"warning\">{} without alt text: a reader with images off sees nothing \
             in their place</span>",
            off.without_alt
        )
    };
    format!(
        "<div class=\"frames\">{desktop}{phone}</div>\
         <details class=\"images-off\" id=\"images-off-{l}\"><summary>Images off \
         ({images} image(s){missing}): as Outlook and many workplace clients show the email \
         until the reader allows images</summary><div class=\"frames\">{off_frame}</div></details>",
        desktop = frame(
            "desktop",
            &format!("Desktop ({DESKTOP_WIDTH} px)"),
            &format!("{l} email, desktop"),
            DESKTOP_WIDTH,
            &shown
        ),
        phone = frame(
            "phone",
            &format!("Phone ({PHONE_WIDTH} px)"),
            &format!("{l} email, phone"),
            PHONE_WIDTH,
            &shown
        ),
        images = off.images,
        off_frame = frame(
            "desktop off",
            &format!("Desktop ({DESKTOP_WIDTH} px), images off"),
            &format!("{l} email, images off"),
            DESKTOP_WIDTH,
            &off.html
        ),
    )
}

/// One frame: a caption, and the email in an iframe of the given logical width.
fn frame(class: &str, caption: &str, title: &str, width: u32, doc: &str) -> String {
    format!(
        "<figure class=\"frame {class}\"><figcaption>{caption}</figcaption><div class=\"viewport\">\
         <iframe title=\"{title}\" width=\"{width}\" style=\"width:{width}px\" \
         sandbox=\"allow-same-origin allow-popups allow-popups-to-escape-sandbox\" \
         srcdoc=\"{doc}\"></iframe></div></figure>",
        doc = esc(doc)
    )
}

/// The email as framed on the page: its links open in a new tab (a click inside a frame would
/// otherwise replace the email with the linked page, inside a 375 px box).
fn for_frame(html: &str) -> String {
    const BASE: &str = "<base target=\"_blank\">";
    match html.find("<head>") {
        Some(i) => {
            let at = i + "<head>".len();
            format!("{}{BASE}{}", &html[..at], &html[at..])
        }
        None => format!("{BASE}{html}"),
    }
}

/// The email as a client that blocks images shows it.
struct ImagesOff {
    /// The email with every `<img>`'s `src` disabled, so the browser shows the alt text in its
    /// place as mail clients do.
    html: String,
    /// How many images the email has.
    images: usize,
    /// How many of them have no alt text (missing or blank).
    without_alt: usize,
}

impl ImagesOff {
    fn of(html: &str) -> Self {
        // The placeholder's look: a dashed box with the alt text, so an image that has none
        // shows as an empty box, which is what the reader gets.
        const STYLE: &str = "<style>img{outline:1px dashed #9aa5b1;outline-offset:-1px;\
                             color:#52606d;font:13px/1.4 sans-serif;}</style>";
        let mut out = String::with_capacity(html.len() + STYLE.len());
        let mut images = 0;
        let mut without_alt = 0;
        let mut rest = html;
        while let Some(i) = find_tag(rest, "img") {
            out.push_str(&rest[..i]);
            let tag_end = rest[i..].find('>').map_or(rest.len(), |e| i + e + 1);
            let tag = &rest[i..tag_end];
            images += 1;
            if super::attribute(tag, "alt").is_none_or(|a| a.trim().is_empty()) {
                without_alt += 1;
            }
            out.push_str(&disable_src(tag));
            rest = &rest[tag_end..];
        }
        out.push_str(rest);
        let html = match out.find("</head>") {
            Some(i) => format!("{}{STYLE}{}", &out[..i], &out[i..]),
            None => format!("{STYLE}{out}"),
        };
        ImagesOff {
            html,
            images,
            without_alt,
        }
    }
}

/// The byte offset of the next `<name` tag (followed by whitespace, `/` or `>`, so that `<img`
/// does not match `<imgx`), case-insensitive as HTML is.
fn find_tag(html: &str, name: &str) -> Option<usize> {
    let bytes = html.as_bytes();
    let mut pos = 0;
    while let Some(i) = html[pos..].find('<') {
        let at = pos + i;
        let after = at + 1 + name.len();
        if bytes.len() > after
            && html.is_char_boundary(after)
            && html[at + 1..after].eq_ignore_ascii_case(name)
            && matches!(bytes[after], b' ' | b'\t' | b'\n' | b'\r' | b'/' | b'>')
        {
            return Some(at);
        }
        pos = at + 1;
    }
    None
}

/// The tag with its `src` and `srcset` attributes renamed, so nothing is fetched and the alt
/// text stands in.
fn disable_src(tag: &str) -> String {
    let mut out = String::with_capacity(tag.len() + 16);
    let mut prev_space = false;
    let mut i = 0;
    while i < tag.len() {
        let rest = &tag[i..];
        let hit = ["src=", "srcset="].into_iter().find(|a| {
            rest.len() >= a.len()
                && rest.is_char_boundary(a.len())
                && rest[..a.len()].eq_ignore_ascii_case(a)
        });
        match hit {
            Some(attr) if prev_space => {
                out.push_str("data-off-");
                out.push_str(&rest[..attr.len()]);
                i += attr.len();
                prev_space = false;
            }
            _ => {
                // `rest` is non-empty and starts at a char boundary: the loop only ever
                // advances by whole characters or whole ASCII attribute names.
                let c = rest.chars().next().unwrap_or(' ');
                prev_space = c.is_whitespace();
                out.push(c);
                i += c.len_utf8();
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_off_disables_every_source_and_counts_missing_alt_text() {
        let html = "<html><head><title>t</title></head><body>\
                    <IMG SRC=\"https://x/a.png\" alt=\"Map of the region\" width=\"600\">\
                    <img srcset=\"b.png 2x\" src='c.png' data-src=\"keep\">\
                    <img src=\"d.png\" alt=\"  \"/><imgx src=\"e.png\"><p>src=\"text\"</p></body></html>";
        let off = ImagesOff::of(html);
        assert_eq!(off.images, 3);
        assert_eq!(off.without_alt, 2, "missing and blank alt");
        assert!(off.html.contains("<IMG data-off-SRC=\"https://x/a.png\""));
        assert!(
            off.html
                .contains("data-off-srcset=\"b.png 2x\" data-off-src='c.png'")
        );
        assert!(
            off.html.contains("data-src=\"keep\""),
            "other attributes untouched"
        );
        assert!(
            off.html.contains("<imgx src=\"e.png\">"),
            "not an img element"
        );
        assert!(off.html.contains("<p>src=\"text\"</p>"), "text untouched");
        assert!(off.html.contains("outline:1px dashed"), "placeholder style");
        assert!(off.html.find("<style>") < off.html.find("</head>"));
    }

    #[test]
    fn links_in_a_frame_open_in_a_new_tab() {
        assert_eq!(
            for_frame("<html><head><meta x></head></html>"),
            "<html><head><base target=\"_blank\"><meta x></head></html>"
        );
        assert_eq!(for_frame("<p>x</p>"), "<base target=\"_blank\"><p>x</p>");
    }
}
