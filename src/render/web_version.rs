//! The web version is the email filled with no subscriber's data; what only makes sense in an
//! inbox comes out of it here. The theme marks such parts `<span class="view-online">` (the
//! "View in your browser" links: on the archive page they would lead to the page itself).

/// The marker of a part that the web version leaves out. Such a span holds no other span.
const MARK: &str = "<span class=\"view-online\">";

/// `html` without its `view-online` spans.
pub(super) fn strip_inbox_only(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(start) = rest.find(MARK) {
        let Some(len) = rest[start..].find("</span>") else {
            break;
        };
        out.push_str(&rest[..start]);
        rest = &rest[start + len + "</span>".len()..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_are_cut_whole() {
        let html =
            "a<span class=\"view-online\"> · <a href=\"x\">View</a></span>b<span>kept</span>";
        assert_eq!(strip_inbox_only(html), "ab<span>kept</span>");
    }
}
