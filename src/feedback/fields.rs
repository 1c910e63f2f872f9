//! The bodies of `message/delivery-status` (RFC 3464 §2.1) and `message/feedback-report`
//! (RFC 5965 §3.1): groups of header-style fields separated by blank lines, with folded
//! continuation lines. Names compare case-insensitively.

/// One group of fields, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Block(Vec<(String, String)>);

impl Block {
    /// The first value of `name`, trimmed.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// A typed field such as `Final-Recipient: rfc822; a@b` without its type; a value with no
    /// `;` is taken whole.
    pub(crate) fn typed(&self, name: &str) -> Option<&str> {
        let value = self.get(name)?;
        let text = value.split_once(';').map_or(value, |(_, v)| v).trim();
        (!text.is_empty()).then_some(text)
    }
}

/// The blocks of a body, empty ones left out.
pub(crate) fn blocks(body: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut current = Block::default();
    for line in body.lines() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            if !current.0.is_empty() {
                out.push(std::mem::take(&mut current));
            }
        } else if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = current.0.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            current
                .0
                .push((name.trim().to_string(), value.trim().to_string()));
        }
    }
    if !current.0.is_empty() {
        out.push(current);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_unfold_and_split() {
        let b = blocks(
            "Reporting-MTA: dns; mx.example.org\r\n\r\nFinal-Recipient: rfc822; a@b.example\r\n\
             Action: failed\r\nDiagnostic-Code: smtp; 550 5.1.1 no\r\n  such user\r\n\r\n",
        );
        assert_eq!(b.len(), 2);
        assert_eq!(b[1].typed("final-recipient"), Some("a@b.example"));
        assert_eq!(
            b[1].typed("Diagnostic-Code"),
            Some("550 5.1.1 no such user")
        );
        assert_eq!(b[1].get("Status"), None);
    }
}
