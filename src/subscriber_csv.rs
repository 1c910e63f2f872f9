//! Subscriber lists as CSV: the streaming reader behind `subscribers import` and the writer
//! behind `subscribers export`, which write and read the same shape so that an export imports
//! back unchanged.
//!
//! The reader holds one record at a time (plus an 8-byte fingerprint per address seen, to
//! report duplicate rows), so a file of a million rows imports in constant memory. It accepts
//! what spreadsheets produce: a UTF-8 byte-order mark, `,`, `;` or tab delimiters (detected from
//! the header), quoted fields with embedded newlines and doubled quotes. Each bad row is
//! reported with the line it starts on and skipped; problems with the file as a whole (missing,
//! empty, binary, no header, no `email` column) stop the import before anything is written.

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::address::Address;
use crate::store::{
    BatchError, BatchWriter, ImportRecord, ImportReport, List, Subscriber, SubscriptionStatus,
};
use crate::subscriber_input::{
    attributes_json, check_attribute, parse_attributes, parse_list_entry, validate_language,
    validate_name,
};

/// Longest accepted cell outside `attributes` and `lists`, in bytes: far above any real name
/// or tag, far below what would let one row exhaust memory or the database.
pub const MAX_CELL_BYTES: usize = 4 * 1024;
/// Longest accepted `lists` cell: a subscriber may be on every list, and each name may be 64
/// characters, so an export of someone on a few hundred lists must still import.
pub const MAX_LISTS_CELL_BYTES: usize = 256 * 1024;
/// Most columns a file may have: the known ones and, at most, one per attribute.
pub const MAX_COLUMNS: usize = 8 + crate::subscriber_input::MAX_ATTRIBUTES;

/// Problems with the file as a whole. Each names the file and says how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum CsvError {
    /// Missing or unreadable.
    #[error("cannot read {path}: {source}")]
    Open {
        /// The CSV file as named on the command line (`-` for standard input).
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Zero bytes (or only a byte-order mark and blank lines).
    #[error(
        "{path} is empty; a subscriber file starts with a header line such as `email,name,lang,lists`"
    )]
    Empty {
        /// The CSV file as named on the command line (`-` for standard input).
        path: PathBuf,
    },
    /// NUL bytes: a spreadsheet (.xlsx), a database or an image, not CSV.
    #[error(
        "{path} is not a text file (it contains NUL bytes); export it from your spreadsheet as CSV UTF-8"
    )]
    Binary {
        /// The CSV file as named on the command line (`-` for standard input).
        path: PathBuf,
    },
    /// The header line is not UTF-8.
    #[error(
        "{path}:1: the header is not UTF-8 text (probably Latin-1 or Windows-1252); re-save the file as CSV UTF-8"
    )]
    HeaderEncoding {
        /// The CSV file as named on the command line (`-` for standard input).
        path: PathBuf,
    },
    /// The first line holds an address: the header row was left out.
    #[error(
        "{path}:1: the first line is data ({first}), not a header; add a header line such as `email,name,lang,lists` above it"
    )]
    NoHeader {
        /// The CSV file as named on the command line (`-` for standard input).
        path: PathBuf,
        /// The first cell.
        first: String,
    },
    /// The header has no `email` column.
    #[error(
        "{path}:1: no `email` column in the header (found: {found}); rename the address column to `email`"
    )]
    NoEmailColumn {
        /// The CSV file as named on the command line (`-` for standard input).
        path: PathBuf,
        /// The columns that were there.
        found: String,
    },
    /// More columns than a subscriber can have fields and attributes.
    #[error(
        "{path}:1: the header has {count} columns; at most {MAX_COLUMNS} are allowed (email, name, lang, lists, attributes and up to {} attribute columns)",
        crate::subscriber_input::MAX_ATTRIBUTES
    )]
    TooManyColumns {
        /// The CSV file as named on the command line (`-` for standard input).
        path: PathBuf,
        /// How many there are.
        count: usize,
    },
    /// The same column twice.
    #[error("{path}:1: the column `{column}` appears twice in the header; remove or rename one")]
    DuplicateColumn {
        /// The CSV file as named on the command line (`-` for standard input).
        path: PathBuf,
        /// The column's name, as the header spells it.
        column: String,
    },
    /// An empty column name.
    #[error("{path}:1: column {index} of the header has no name; name it or delete the column")]
    EmptyColumn {
        /// The CSV file as named on the command line (`-` for standard input).
        path: PathBuf,
        /// 1-based position.
        index: usize,
    },
    /// Reading failed part-way (I/O error, or a quote left open at the end of the file).
    #[error("{path}:{line}: {message}")]
    Read {
        /// The CSV file as named on the command line (`-` for standard input).
        path: PathBuf,
        /// Where reading stopped.
        line: u64,
        /// What happened.
        message: String,
    },
    /// A row joins a list that does not exist. The whole import stops there, once, rather
    /// than refusing every row that names it; the rows waiting with it are not written.
    #[error(
        "{path}:{line}: there is no list named `{name}`{hint}; create it with `bulletin lists add {name}` and import the file again"
    )]
    MissingList {
        /// The CSV file as named on the command line (`-` for standard input).
        path: PathBuf,
        /// The line of the first row naming it.
        line: u64,
        /// The list as the file spells it.
        name: String,
        /// A near name that exists (" (did you mean `news`?)"), or nothing.
        hint: String,
    },
    /// Writing the export failed (the I/O error is kept, so that a closed pipe is recognised).
    #[error("cannot write CSV: {0}")]
    Write(#[source] std::io::Error),
}

/// What one data row turned into.
#[derive(Debug)]
pub enum Row {
    /// A valid row.
    Record(ImportRecord),
    /// A row that is skipped, with the line it starts on and why.
    Rejected {
        /// Line of the file.
        line: u64,
        /// Why, and how to fix it.
        reason: String,
    },
}

/// Why a row did not become a record.
enum Refusal {
    /// The row is skipped, for this reason.
    Row(String),
    /// The row names this list, which does not exist: the import stops.
    MissingList(String),
}

impl From<String> for Refusal {
    fn from(reason: String) -> Self {
        Self::Row(reason)
    }
}

#[derive(Debug, Default)]
struct Columns {
    email: usize,
    name: Option<usize>,
    lang: Option<usize>,
    lists: Option<usize>,
    attributes: Option<usize>,
    /// Every other column, by name: each becomes an attribute.
    extra: Vec<(usize, String)>,
    count: usize,
}

/// A streaming reader of subscriber rows.
pub struct ImportReader {
    path: PathBuf,
    reader: csv::Reader<Box<dyn Read>>,
    columns: Columns,
    record: csv::ByteRecord,
    /// Fingerprint of each address seen → line of its first row.
    seen: HashMap<u64, u64>,
    lists: HashMap<String, Arc<List>>,
    extra_lists: Vec<Arc<List>>,
    /// Blank lines skipped before the header, which the CSV parser never saw.
    line_offset: u64,
    /// Whether `name@[192.0.2.1]` is accepted (`--allow-ip-literal`).
    allow_ip_literal: bool,
}

impl ImportReader {
    /// Opens `path` (`-` for standard input) and reads its header.
    ///
    /// `lists` are the lists that exist (to resolve the `lists` column); `extra_lists` are
    /// joined by every row (`--list`).
    pub fn open(path: &Path, lists: Vec<List>, extra_lists: Vec<List>) -> Result<Self, CsvError> {
        let input: Box<dyn Read> = if path == Path::new("-") {
            Box::new(std::io::stdin())
        } else {
            Box::new(std::fs::File::open(path).map_err(|source| CsvError::Open {
                path: path.to_path_buf(),
                source,
            })?)
        };
        Self::from_reader(path, input, lists, extra_lists)
    }

    /// Like [`ImportReader::open`] over any reader; `path` is used in messages.
    pub fn from_reader(
        path: &Path,
        input: Box<dyn Read>,
        lists: Vec<List>,
        extra_lists: Vec<List>,
    ) -> Result<Self, CsvError> {
        let path = path.to_path_buf();
        // CRLF (what Excel writes) is read as LF: the CSV parser ends a record at the CR and
        // counts the LF towards the next one, which put every row one line too early.
        let lf: Box<dyn Read> = Box::new(CrlfAsLf::new(BufReader::with_capacity(64 * 1024, input)));
        let mut buffered = BufReader::with_capacity(64 * 1024, lf);
        let io_err = |path: &PathBuf, source| CsvError::Open {
            path: path.clone(),
            source,
        };
        // A NUL in the first 64 KiB means a binary file; no text format we read has one.
        let head = buffered.fill_buf().map_err(|e| io_err(&path, e))?;
        if head.contains(&0) {
            return Err(CsvError::Binary { path });
        }
        if head.starts_with(b"\xEF\xBB\xBF") {
            buffered.consume(3);
        }
        // Skip blank lines before the header, then keep the header line to detect the
        // delimiter and hand it back to the CSV parser.
        let mut header = Vec::new();
        let mut blank_lines = 0u64;
        loop {
            header.clear();
            let n = buffered
                .read_until(b'\n', &mut header)
                .map_err(|e| io_err(&path, e))?;
            if n == 0 {
                return Err(CsvError::Empty { path });
            }
            if header.iter().all(|b| b.is_ascii_whitespace()) {
                blank_lines += 1;
                continue;
            }
            break;
        }
        let delimiter = detect_delimiter(&header);
        let chained: Box<dyn Read> = Box::new(std::io::Cursor::new(header).chain(buffered));
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .flexible(true)
            .has_headers(false)
            .from_reader(chained);
        let mut header_record = csv::ByteRecord::new();
        let found = reader
            .read_byte_record(&mut header_record)
            .map_err(|e| read_error(&path, 1, &e))?;
        if !found {
            return Err(CsvError::Empty { path });
        }
        let columns = parse_header(&path, &header_record)?;
        Ok(Self {
            line_offset: blank_lines,
            path,
            reader,
            columns,
            record: csv::ByteRecord::new(),
            seen: HashMap::new(),
            lists: lists
                .into_iter()
                .map(|l| (l.name.clone(), Arc::new(l)))
                .collect(),
            extra_lists: extra_lists.into_iter().map(Arc::new).collect(),
            allow_ip_literal: false,
        })
    }

    /// Accepts IP literals as domains (`name@[192.0.2.1]`), refused by default.
    pub fn allow_ip_literal(&mut self, allow: bool) {
        self.allow_ip_literal = allow;
    }

    /// The next row, `None` at the end of the file, or an error that stops the import.
    pub fn next_row(&mut self) -> Option<Result<Row, CsvError>> {
        loop {
            match self.reader.read_byte_record(&mut self.record) {
                Ok(false) => return None,
                Ok(true) => {}
                Err(e) => {
                    let line = e.position().map_or(0, |p| p.line()) + self.line_offset;
                    return Some(Err(read_error(&self.path, line, &e)));
                }
            }
            let line = self.record.position().map_or(0, |p| p.line()) + self.line_offset;
            // Lines holding only delimiters or spaces are spreadsheet leftovers, not rows.
            if self
                .record
                .iter()
                .all(|f| f.iter().all(u8::is_ascii_whitespace))
            {
                continue;
            }
            return Some(match self.row(line) {
                Ok(record) => Ok(Row::Record(record)),
                Err(Refusal::Row(reason)) => Ok(Row::Rejected { line, reason }),
                Err(Refusal::MissingList(name)) => Err(self.missing_list(line, name)),
            });
        }
    }

    fn missing_list(&self, line: u64, name: String) -> CsvError {
        let known: Vec<&str> = self.lists.keys().map(String::as_str).collect();
        let hint = crate::diagnostic::closest(&name, &known)
            .map(|near| format!(" (did you mean `{near}`?)"))
            .unwrap_or_default();
        CsvError::MissingList {
            path: self.path.clone(),
            line,
            name,
            hint,
        }
    }

    fn cell(&self, index: usize, column: &str) -> Result<&str, String> {
        let bytes = self.record.get(index).unwrap_or(b"");
        let limit = match column {
            "attributes" => crate::subscriber_input::MAX_ATTRIBUTES_CELL_BYTES,
            "lists" => MAX_LISTS_CELL_BYTES,
            _ => MAX_CELL_BYTES,
        };
        if bytes.len() > limit {
            return Err(format!(
                "column `{column}` is {} bytes long; at most {limit} are allowed",
                bytes.len()
            ));
        }
        std::str::from_utf8(bytes).map(restore_formula).map_err(|e| {
            let bad = bytes.get(e.valid_up_to()).copied().unwrap_or(0);
            format!(
                "column `{column}` is not UTF-8 (byte 0x{bad:02X}, probably Latin-1 or Windows-1252); re-save the file as CSV UTF-8"
            )
        })
    }

    fn row(&mut self, line: u64) -> Result<ImportRecord, Refusal> {
        let c = &self.columns;
        if self.record.len() > c.count {
            return Err(Refusal::Row(format!(
                "has {} fields but the header has {}; quote fields that contain the delimiter",
                self.record.len(),
                c.count
            )));
        }
        let email = self.cell(c.email, "email")?;
        let address = Address::parse_with(email, self.allow_ip_literal)
            .map_err(|e| format!("invalid address: {e}"))?;
        let name = match c.name {
            Some(i) => Some(validate_name(self.cell(i, "name")?).map_err(|e| e.to_string())?),
            None => None,
        };
        let language = match c.lang {
            Some(i) => validate_language(self.cell(i, "lang")?).map_err(|e| e.to_string())?,
            None => None,
        };
        let mut attributes = match c.attributes {
            Some(i) => parse_attributes(self.cell(i, "attributes")?).map_err(|e| e.to_string())?,
            None => Map::new(),
        };
        for (i, column) in &c.extra {
            let value = self.cell(*i, column)?.trim();
            if value.is_empty() {
                continue;
            }
            let value = Value::String(value.to_string());
            check_attribute(column, &value).map_err(|e| e.to_string())?;
            attributes.insert(column.clone(), value);
        }
        let mut lists: Vec<(Arc<List>, Option<SubscriptionStatus>)> = Vec::new();
        if let Some(i) = c.lists {
            for entry in self
                .cell(i, "lists")?
                .split('|')
                .filter(|s| !s.trim().is_empty())
            {
                let (name, status) = parse_list_entry(entry).map_err(|e| e.to_string())?;
                let Some(list) = self.lists.get(&name) else {
                    return Err(Refusal::MissingList(name));
                };
                lists.push((Arc::clone(list), status));
            }
        }
        for list in &self.extra_lists {
            if !lists.iter().any(|(l, _)| l.id == list.id) {
                lists.push((Arc::clone(list), None));
            }
        }
        let attributes_json = attributes_json(&attributes).map_err(|e| e.to_string())?;
        // Checked last, so that a bad row does not mark its address as seen.
        let key = address.key();
        let mut hasher = DefaultHasher::new();
        key.hash(&mut hasher);
        let fingerprint = hasher.finish();
        if let Some(first) = self.seen.get(&fingerprint) {
            return Err(Refusal::Row(format!(
                "duplicate of line {first} ({address}); each address may appear once per file"
            )));
        }
        self.seen.insert(fingerprint, line);
        Ok(ImportRecord {
            line,
            address,
            key,
            name,
            language,
            attributes,
            attributes_json,
            lists,
        })
    }
}

/// A reader that passes its input through with every CRLF turned into LF.
///
/// Cells lose nothing by it: a line break inside a cell is refused anyway (names and
/// attributes never carry one), and between JSON tokens either is whitespace.
struct CrlfAsLf<R> {
    inner: R,
    /// A CR ended the last chunk: whether it is dropped depends on the next byte.
    cr_held: bool,
}

impl<R: BufRead> CrlfAsLf<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            cr_held: false,
        }
    }
}

impl<R: BufRead> Read for CrlfAsLf<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        loop {
            let input = self.inner.fill_buf()?;
            if std::mem::take(&mut self.cr_held) && input.first() != Some(&b'\n') {
                // A CR not followed by LF (at the end, or an old Mac line end) is kept.
                out[0] = b'\r';
                return Ok(1);
            }
            if input.is_empty() {
                return Ok(0);
            }
            let take = input.len().min(out.len());
            let copied = match input[..take].iter().position(|&b| b == b'\r') {
                Some(cr) => {
                    self.cr_held = true;
                    out[..cr].copy_from_slice(&input[..cr]);
                    self.inner.consume(cr + 1);
                    cr
                }
                None => {
                    out[..take].copy_from_slice(&input[..take]);
                    self.inner.consume(take);
                    take
                }
            };
            // Zero only when the chunk began with a CR: look at what follows it first, as
            // `Ok(0)` would mean the end of the input.
            if copied > 0 {
                return Ok(copied);
            }
        }
    }
}

/// What reading a file into the database came to.
#[derive(Debug)]
pub struct Imported {
    /// Counts and per-row notes of every batch written.
    pub report: ImportReport,
    /// Addresses with a non-ASCII part before the @: only an SMTPUTF8 relay delivers to them.
    pub non_ascii: u64,
    /// The problem with the file that stopped reading part-way, if any. The rows before it
    /// were written all the same (importing the fixed file again counts them as unchanged),
    /// except after [`CsvError::MissingList`]: then only the batches before the one holding
    /// that row were, `rows_written` rows.
    pub stopped: Option<CsvError>,
    /// Rows of the file that reached the database (in batches, rejected ones not counted).
    pub rows_written: u64,
}

impl ImportReader {
    /// Reads every row into `writer`: valid rows are written in batches, refused ones counted
    /// and noted. A problem with the file stops reading (see [`Imported::stopped`]); a batch
    /// the database refuses stops the import.
    pub async fn import_into<N: FnMut(u64, &str)>(
        mut self,
        mut writer: BatchWriter<N>,
    ) -> Result<Imported, BatchError> {
        let mut stopped = None;
        let mut non_ascii = 0u64;
        while let Some(row) = self.next_row() {
            match row {
                Ok(Row::Record(record)) => {
                    non_ascii += u64::from(record.address.needs_smtputf8());
                    writer.push(record);
                    if writer.batch_full() {
                        writer.write_batch().await?;
                    }
                }
                Ok(Row::Rejected { line, reason }) => writer.reject(line, reason),
                Err(e) => {
                    stopped = Some(e);
                    break;
                }
            }
        }
        let (report, rows_written) = match stopped {
            Some(CsvError::MissingList { .. }) => writer.abandon().await?,
            _ => writer.finish().await?,
        };
        Ok(Imported {
            report,
            non_ascii,
            stopped,
            rows_written,
        })
    }
}

/// First characters that make a spreadsheet read a cell as a formula (OWASP, CSV injection):
/// an address such as `=cmd|'/Ccalc'!A0@example.org` is valid, and a name is anything.
const FORMULA_START: &[char] = &['=', '+', '-', '@', '\t', '\r'];

/// Whether `cell`, after any leading `'`s, starts like a formula.
fn formula_like(cell: &str) -> bool {
    cell.trim_start_matches('\'').starts_with(FORMULA_START)
}

/// The cell as export writes it: a `'` in front of a formula-like cell, which spreadsheets
/// show as text and never run. Cells already starting with `'` and then a formula get one
/// more, so that [`restore_formula`] can take exactly one away: the round trip is exact.
/// Every CSV bulletin writes for spreadsheets goes through it (exports, campaign reports).
pub fn neutralise_formula(cell: &str) -> std::borrow::Cow<'_, str> {
    if formula_like(cell) {
        std::borrow::Cow::Owned(format!("'{cell}"))
    } else {
        std::borrow::Cow::Borrowed(cell)
    }
}

/// The inverse of [`neutralise_formula`]: one `'` less before a formula-like rest. A cell
/// like `'t Hooft` is left alone.
fn restore_formula(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if formula_like(rest) => rest,
        _ => cell,
    }
}

/// A CSV write error with its I/O error unwrapped, so that a closed pipe stays recognisable.
fn write_error(e: csv::Error) -> CsvError {
    CsvError::Write(match e.into_kind() {
        csv::ErrorKind::Io(io) => io,
        other => std::io::Error::other(format!("{other:?}")),
    })
}

fn read_error(path: &Path, line: u64, e: &csv::Error) -> CsvError {
    let message = match e.kind() {
        csv::ErrorKind::Io(io) => format!("read error: {io}"),
        _ => format!("{e}; check for a quote that is opened and never closed"),
    };
    CsvError::Read {
        path: path.to_path_buf(),
        line,
        message,
    }
}

/// The delimiter that appears most often outside quotes in the header line.
fn detect_delimiter(header: &[u8]) -> u8 {
    let mut counts = [(b',', 0usize), (b';', 0), (b'\t', 0)];
    let mut quoted = false;
    for &b in header {
        if b == b'"' {
            quoted = !quoted;
        } else if !quoted && let Some(entry) = counts.iter_mut().find(|(d, _)| *d == b) {
            entry.1 += 1;
        }
    }
    // The first maximum wins, so a header with no delimiter at all (one column) means comma.
    counts
        .iter()
        .fold(
            (b',', 0),
            |best, &(d, n)| if n > best.1 { (d, n) } else { best },
        )
        .0
}

fn parse_header(path: &Path, header: &csv::ByteRecord) -> Result<Columns, CsvError> {
    let mut names = Vec::with_capacity(header.len());
    for field in header {
        let text = std::str::from_utf8(field).map_err(|_| CsvError::HeaderEncoding {
            path: path.to_path_buf(),
        })?;
        names.push(text.trim().to_string());
    }
    if names.len() > MAX_COLUMNS {
        return Err(CsvError::TooManyColumns {
            path: path.to_path_buf(),
            count: names.len(),
        });
    }
    let mut columns = Columns {
        count: names.len(),
        ..Columns::default()
    };
    let mut email = None;
    let mut seen: HashMap<String, ()> = HashMap::new();
    for (i, name) in names.iter().enumerate() {
        let lower = name.to_lowercase();
        if lower.is_empty() {
            // A trailing delimiter leaves an empty last column; tolerate only that one.
            if i + 1 == names.len() && i > 0 {
                continue;
            }
            return Err(CsvError::EmptyColumn {
                path: path.to_path_buf(),
                index: i + 1,
            });
        }
        let canonical = match lower.as_str() {
            "e-mail" | "email address" | "mail" => "email".to_string(),
            "language" => "lang".to_string(),
            other => other.to_string(),
        };
        if seen.insert(canonical.clone(), ()).is_some() {
            return Err(CsvError::DuplicateColumn {
                path: path.to_path_buf(),
                column: name.clone(),
            });
        }
        match canonical.as_str() {
            "email" => email = Some(i),
            "name" => columns.name = Some(i),
            "lang" => columns.lang = Some(i),
            "lists" => columns.lists = Some(i),
            "attributes" => columns.attributes = Some(i),
            _ => columns.extra.push((i, name.clone())),
        }
    }
    match email {
        Some(i) => columns.email = i,
        None => {
            if let Some(first) = names.iter().find(|n| Address::parse(n).is_ok()) {
                return Err(CsvError::NoHeader {
                    path: path.to_path_buf(),
                    first: first.clone(),
                });
            }
            return Err(CsvError::NoEmailColumn {
                path: path.to_path_buf(),
                found: names.join(", "),
            });
        }
    }
    Ok(columns)
}

/// Writes subscribers as CSV in the shape [`ImportReader`] reads: `email,name,lang,lists,attributes`.
pub struct ExportWriter<W: Write> {
    writer: csv::Writer<W>,
    lists: HashMap<String, List>,
}

impl<W: Write> ExportWriter<W> {
    /// Starts the file with its header. `lists` tells which statuses need writing out.
    pub fn new(out: W, lists: Vec<List>) -> Result<Self, CsvError> {
        Self::start(csv::Writer::from_writer(out), lists)
    }

    /// Like [`ExportWriter::new`], in the shape Excel opens with accents intact: a UTF-8
    /// byte-order mark (without it Excel reads the file in the locale's legacy code page),
    /// `;` between cells (Excel's list separator wherever the comma is the decimal mark,
    /// most of Europe) and CRLF line ends. [`ImportReader`] reads it back unchanged.
    pub fn excel(mut out: W, lists: Vec<List>) -> Result<Self, CsvError> {
        out.write_all(b"\xEF\xBB\xBF").map_err(CsvError::Write)?;
        let writer = csv::WriterBuilder::new()
            .delimiter(b';')
            .terminator(csv::Terminator::CRLF)
            .from_writer(out);
        Self::start(writer, lists)
    }

    fn start(mut writer: csv::Writer<W>, lists: Vec<List>) -> Result<Self, CsvError> {
        writer
            .write_record(["email", "name", "lang", "lists", "attributes"])
            .map_err(write_error)?;
        Ok(Self {
            writer,
            lists: lists.into_iter().map(|l| (l.name.clone(), l)).collect(),
        })
    }

    /// Writes one subscriber.
    pub fn write(&mut self, s: &Subscriber) -> Result<(), CsvError> {
        // A status is written only where importing the bare name would give another one.
        let lists: Vec<String> = s
            .subscriptions()
            .into_iter()
            .map(|(list, status)| {
                let default = self
                    .lists
                    .get(&list)
                    .map(|l| SubscriptionStatus::initial_for(l).as_str());
                if default == Some(status.as_str()) {
                    list
                } else {
                    format!("{list}:{status}")
                }
            })
            .collect();
        let attributes = match s.attributes_json() {
            Value::Object(m) if m.is_empty() => String::new(),
            v => v.to_string(),
        };
        let lists = lists.join("|");
        let cells = [
            s.email.as_str(),
            s.name.as_str(),
            s.language.as_deref().unwrap_or(""),
            &lists,
            &attributes,
        ]
        .map(neutralise_formula);
        self.writer
            .write_record(cells.iter().map(|c| c.as_bytes()))
            .map_err(write_error)
    }

    /// Flushes what is buffered.
    pub fn finish(mut self) -> Result<(), CsvError> {
        self.writer.flush().map_err(CsvError::Write)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(text: &[u8]) -> Result<ImportReader, CsvError> {
        ImportReader::from_reader(
            Path::new("t.csv"),
            Box::new(std::io::Cursor::new(text.to_vec())),
            Vec::new(),
            Vec::new(),
        )
    }

    fn rows(text: &[u8]) -> Vec<Row> {
        let mut r = reader(text).expect("valid header");
        let mut out = Vec::new();
        while let Some(row) = r.next_row() {
            out.push(row.expect("no file error"));
        }
        out
    }

    #[test]
    fn semicolons_bom_quotes_and_embedded_newlines() {
        // A quoted cell spanning two lines: parsed as one field, refused as an attribute
        // (line breaks never reach templates or headers), and the next row's line is right.
        let text = "\u{feff}email;name;city\n\"ana@example.org\";\"Lima; \"\"Ana\"\"\";\"Line one\nline two\"\nbo@example.org;\"Bo\";Dhaka\n";
        let out = rows(text.as_bytes());
        assert_eq!(out.len(), 2);
        match &out[0] {
            Row::Rejected { line: 2, reason } => assert!(reason.contains("`city`"), "{reason}"),
            other => panic!("expected line 2 rejected, got {other:?}"),
        }
        let Row::Record(second) = &out[1] else {
            panic!("second row rejected: {:?}", out[1])
        };
        assert_eq!(second.line, 4);
        assert_eq!(
            second.attributes.get("city").and_then(|v| v.as_str()),
            Some("Dhaka")
        );
        let out = rows("email;name\nana@example.org;\"Lima; \"\"Ana\"\"\"\n".as_bytes());
        let Row::Record(first) = &out[0] else {
            panic!("rejected: {:?}", out[0])
        };
        assert_eq!(first.name.as_deref(), Some("Lima; \"Ana\""));
    }

    /// Excel's CRLF line ends, also inside a quoted cell: each row on its editor line.
    #[test]
    fn crlf_rows_start_on_their_true_line() {
        let text =
            "email,attributes\r\na@example.org,\"{\r\n}\"\r\nbad\r\nb@example.org,\r\nworse\r\n";
        let lines: Vec<(u64, bool)> = rows(text.as_bytes())
            .iter()
            .map(|r| match r {
                Row::Record(r) => (r.line, true),
                Row::Rejected { line, .. } => (*line, false),
            })
            .collect();
        assert_eq!(lines, [(2, true), (4, false), (5, true), (6, false)]);
    }

    /// CRLF becomes LF whatever the chunks it arrives in; a lone CR stays.
    #[test]
    fn crlf_as_lf_across_chunk_boundaries() {
        let input = b"a\r\nb\r\r\nc\rd\r";
        for capacity in 1..=input.len() {
            let inner = BufReader::with_capacity(capacity, &input[..]);
            let mut out = Vec::new();
            CrlfAsLf::new(inner)
                .read_to_end(&mut out)
                .expect("in memory");
            assert_eq!(out, b"a\nb\r\nc\rd\r", "capacity {capacity}");
        }
    }

    #[test]
    fn duplicates_are_reported_with_the_first_line() {
        let out = rows(b"email\nana@example.org\nANA@Example.org\n");
        match &out[1] {
            Row::Rejected { line, reason } => {
                assert_eq!(*line, 3);
                assert!(reason.contains("duplicate of line 2"), "{reason}");
            }
            other => panic!("expected rejection, got {other:?}"),
        }
    }

    #[test]
    fn latin1_cell_is_rejected_by_line() {
        let out = rows(b"email,name\nana@example.org,Jos\xe9\n");
        match &out[0] {
            Row::Rejected { line, reason } => {
                assert_eq!(*line, 2);
                assert!(reason.contains("0xE9"), "{reason}");
            }
            other => panic!("expected rejection, got {other:?}"),
        }
    }

    #[test]
    fn file_level_errors() {
        assert!(matches!(reader(b""), Err(CsvError::Empty { .. })));
        assert!(matches!(reader(b"\n\n"), Err(CsvError::Empty { .. })));
        assert!(matches!(
            reader(b"PK\x03\x04\0\0"),
            Err(CsvError::Binary { .. })
        ));
        assert!(matches!(
            reader(b"ana@example.org,Ana\n"),
            Err(CsvError::NoHeader { .. })
        ));
        assert!(matches!(
            reader(b"mail_addr,name\n"),
            Err(CsvError::NoEmailColumn { .. })
        ));
        assert!(matches!(
            reader(b"email,name,Name\n"),
            Err(CsvError::DuplicateColumn { .. })
        ));
    }

    #[test]
    fn formula_neutralising_is_reversed_exactly() {
        for cell in [
            "=1+1", "+1", "-x", "@A1", "\tx", "\rx", "'=x", "''=x", "'t Hooft", "'", "", "ana",
        ] {
            let written = neutralise_formula(cell);
            assert!(!written.starts_with(FORMULA_START), "{cell:?}");
            assert_eq!(restore_formula(&written), cell, "{cell:?}");
        }
        assert_eq!(restore_formula("'t Hooft"), "'t Hooft");
    }

    #[test]
    fn delimiter_detection_ignores_quoted_ones() {
        assert_eq!(detect_delimiter(b"\"a,b\";c;d\n"), b';');
        assert_eq!(detect_delimiter(b"email\n"), b',');
        assert_eq!(detect_delimiter(b"email\tname\n"), b'\t');
    }
}
