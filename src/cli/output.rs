//! Everything the commands print on standard output: lines, JSON and plain-text tables.
//!
//! `println!` panics when the reader of a pipe has gone (`bulletin subscribers list | head`).
//! Printing here returns the error instead; `main` ends quietly on a broken pipe (see
//! [`is_broken_pipe`]), as `cat` or `grep` do when `head` has read enough.

use std::io::Write as _;

/// Writes one line (the formatted arguments and a newline) to standard output.
pub(crate) fn write_line(args: std::fmt::Arguments<'_>) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_fmt(args)?;
    out.write_all(b"\n")
}

/// `println!` that returns `std::io::Result<()>` instead of panicking: `outln!("{x}")?`.
macro_rules! outln {
    () => {
        $crate::cli::output::write_line(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::cli::output::write_line(format_args!($($arg)*))
    };
}
pub(crate) use outln;

/// True when `error` is, or was caused by, a write to a pipe whose reader has gone.
pub fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Prints rows under headers, columns padded to their widest cell. Long cells are cut with `…`
/// on a terminal, where a table that wraps is unreadable; piped output keeps every character.
pub(crate) fn print_table(headers: &[&str], rows: &[Vec<String>]) -> std::io::Result<()> {
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
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    writeln!(out, "{}", line(&header))?;
    for row in &cells {
        writeln!(out, "{}", line(row))?;
    }
    out.flush()
}
