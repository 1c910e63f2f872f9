//! Plain-text tables for terminals.

/// Prints rows under headers, columns padded to their widest cell. Long cells are cut with `…`
/// on a terminal, where a table that wraps is unreadable; piped output keeps every character.
pub(crate) fn print_table(headers: &[&str], rows: &[Vec<String>]) {
    let cut = super::stdout_is_terminal();
    let shorten = |s: &str| -> String {
        const MAX: usize = 48;
        if cut && s.chars().count() > MAX {
            let mut t: String = s.chars().take(MAX - 1).collect();
            t.push('…');
            t
        } else {
            s.to_string()
        }
    };
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| shorten(c)).collect())
        .collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &cells {
        for (i, c) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(c.chars().count());
            }
        }
    }
    let line = |row: &[String]| -> String {
        let mut out = String::new();
        for (i, c) in row.iter().enumerate() {
            if i > 0 {
                out.push_str("  ");
            }
            out.push_str(c);
            if i + 1 < row.len() {
                let pad = widths
                    .get(i)
                    .copied()
                    .unwrap_or(0)
                    .saturating_sub(c.chars().count());
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out
    };
    let header: Vec<String> = headers.iter().map(|h| h.to_uppercase()).collect();
    println!("{}", line(&header));
    for row in &cells {
        println!("{}", line(row));
    }
}
