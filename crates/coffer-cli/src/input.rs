//! Customer records streamed from CSV or JSON Lines, one row at a time, so that memory stays
//! flat however long the file is.
//!
//! A row that cannot become a record (a short row, a cell that is not UTF-8, an unknown
//! document type) is a *row error*: it is reported by line number, never silently dropped, and
//! never with its values. A problem with the whole file (unreadable, wrong columns) is a
//! [`Failure`].

use std::collections::BTreeMap;
use std::io::{self, BufRead, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use coffer::record::{
    AccountType, BankAccount, CustomerKind, CustomerRecord, DocumentType, IdDocument,
    MAX_LIST_ITEMS, MAX_RECORD_BYTES, Sensitive,
};

use crate::util::Failure;

/// The input format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// Comma-separated values with a header row (see `docs/CLI.md` for the columns).
    Csv,
    /// One JSON record per line.
    Jsonl,
}

/// Why a row did not become a record: a stable code and a message without values.
#[derive(Clone, Debug)]
pub(crate) struct RowError {
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

/// One input row.
pub(crate) struct Row {
    /// Its line number in the file (the first line of the row, for CSV).
    pub(crate) line: u64,
    /// The record, or why not.
    pub(crate) record: Result<CustomerRecord, RowError>,
}

/// Counts the bytes a reader has consumed (for the progress bar).
struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Defaults for cells the file lacks.
#[derive(Clone, Debug, Default)]
pub(crate) struct Defaults {
    pub(crate) tenant: Option<String>,
    pub(crate) kind: Option<CustomerKind>,
}

/// A stream of rows.
pub(crate) struct Rows {
    /// The input's name, for messages.
    name: String,
    source: Source,
    /// Bytes consumed so far.
    pub(crate) consumed: Arc<AtomicU64>,
    /// The input's size, when it is a regular file.
    pub(crate) total: Option<u64>,
}

enum Source {
    Jsonl {
        reader: Box<dyn BufRead + Send>,
        line: u64,
        buf: Vec<u8>,
        defaults: Defaults,
    },
    Csv {
        reader: Box<csv::Reader<Box<dyn Read + Send>>>,
        columns: Vec<Column>,
        defaults: Defaults,
        record: csv::ByteRecord,
    },
}

/// Picks the format from `--format`, else the file's extension (`.csv`; anything else is JSON
/// Lines).
pub(crate) fn detect(format: Option<Format>, file: Option<&Path>) -> Format {
    format.unwrap_or_else(|| match file.and_then(Path::extension) {
        Some(e) if e.eq_ignore_ascii_case("csv") => Format::Csv,
        _ => Format::Jsonl,
    })
}

/// Opens `file` (`-` or nothing: standard input).
pub(crate) fn open(
    file: Option<&PathBuf>,
    format: Format,
    defaults: Defaults,
) -> Result<Rows, Failure> {
    let consumed = Arc::new(AtomicU64::new(0));
    let (raw, total): (Box<dyn Read + Send>, Option<u64>) = match file {
        None => (Box::new(io::stdin()), None),
        Some(p) if p.as_os_str() == "-" => (Box::new(io::stdin()), None),
        Some(p) => {
            let f = crate::util::open_file(p)?;
            let meta = f.metadata().ok().filter(std::fs::Metadata::is_file);
            (Box::new(f), meta.map(|m| m.len()))
        }
    };
    let counting: Box<dyn Read + Send> = Box::new(Counting {
        inner: raw,
        count: Arc::clone(&consumed),
    });
    let name = file.map_or("standard input".to_owned(), |p| p.display().to_string());
    let source = match format {
        Format::Jsonl => Source::Jsonl {
            reader: Box::new(io::BufReader::with_capacity(1 << 16, counting)),
            line: 0,
            buf: Vec::new(),
            defaults,
        },
        Format::Csv => {
            let mut reader = csv::ReaderBuilder::new()
                .has_headers(true)
                .flexible(true)
                .buffer_capacity(1 << 16)
                .from_reader(counting);
            let headers = reader
                .byte_headers()
                .map_err(|e| Failure::input(format!("{name}: cannot read the header row: {e}")))?
                .clone();
            let columns =
                columns(&headers, &defaults).map_err(|m| Failure::input(format!("{name}: {m}")))?;
            Source::Csv {
                reader: Box::new(reader),
                columns,
                defaults,
                record: csv::ByteRecord::new(),
            }
        }
    };
    Ok(Rows {
        name,
        source,
        consumed,
        total,
    })
}

impl Rows {
    /// The next row; `None` at the end; `Err` when the file itself cannot be read further
    /// (the message names the input).
    pub(crate) fn next_row(&mut self) -> Option<Result<Row, Failure>> {
        let next = self.read_row();
        match next {
            Some(Err(f)) => Some(Err(Failure::input(format!("{}: {}", self.name, f.message)))),
            other => other,
        }
    }

    fn read_row(&mut self) -> Option<Result<Row, Failure>> {
        match &mut self.source {
            Source::Jsonl {
                reader,
                line,
                buf,
                defaults,
            } => loop {
                buf.clear();
                // Bounded read: a "line" longer than a record may be cannot be one.
                let limit = (MAX_RECORD_BYTES + 2) as u64;
                let n = match reader.by_ref().take(limit).read_until(b'\n', buf) {
                    Ok(n) => n,
                    Err(e) => return Some(Err(Failure::input(format!("read failed: {e}")))),
                };
                if n == 0 {
                    return None;
                }
                *line += 1;
                let this = *line;
                if buf.last() != Some(&b'\n') && n as u64 == limit {
                    // Skip the rest of the oversized line, then report it.
                    let mut rest = Vec::new();
                    if let Err(e) = reader.read_until(b'\n', &mut rest) {
                        return Some(Err(Failure::input(format!("read failed: {e}"))));
                    }
                    return Some(Ok(Row {
                        line: this,
                        record: Err(RowError {
                            code: "input.too_large",
                            message: format!("the line is longer than {MAX_RECORD_BYTES} bytes"),
                        }),
                    }));
                }
                if buf.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let record = CustomerRecord::from_json_bytes(buf)
                    .map(|mut r| {
                        if r.tenant.is_empty()
                            && let Some(t) = &defaults.tenant
                        {
                            r.tenant = t.clone();
                        }
                        r
                    })
                    .map_err(|e| RowError {
                        code: e.kind().name(),
                        message: e.to_string(),
                    });
                // The buffer held the line's plaintext.
                zeroize::Zeroize::zeroize(buf);
                return Some(Ok(Row { line: this, record }));
            },
            Source::Csv {
                reader,
                columns,
                defaults,
                record,
            } => match reader.read_byte_record(record) {
                Ok(false) => None,
                Ok(true) => {
                    let line = record.position().map_or(0, csv::Position::line);
                    let r = row_to_record(record, columns, defaults);
                    // The csv crate's buffers cannot be wiped through its API; they are reused
                    // row after row, so at most one row's text lingers (docs/CLI.md).
                    record.clear();
                    Some(Ok(Row { line, record: r }))
                }
                Err(e) => match e.kind() {
                    csv::ErrorKind::Io(_) => Some(Err(Failure::input(format!("read failed: {e}")))),
                    _ => {
                        let line = e.position().map_or(0, csv::Position::line);
                        Some(Ok(Row {
                            line,
                            record: Err(RowError {
                                code: "input.csv",
                                message: "the row is not well-formed CSV".into(),
                            }),
                        }))
                    }
                },
            },
        }
    }
}

/// What a CSV column holds. List columns take a suffix `_2` … `_N` for further items.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Column {
    Id,
    Tenant,
    Subject,
    Kind,
    Name,
    IdType(usize),
    IdNumber(usize),
    IdCountry(usize),
    Phone(usize),
    Email(usize),
    Address(usize),
    BankName(usize),
    BankBranch(usize),
    AccountType(usize),
    AccountNumber(usize),
    Custom(String),
}

/// The column names Coffer reads.
pub(crate) const COLUMNS: &str = "id, tenant, subject, kind, name, id_type, id_number, id_country, \
     phone, email, address, bank_name, bank_branch, account_type, account_number (each of the \
     last ten also as NAME_2 … for further items), custom.KEY";

fn column(name: &str) -> Option<Column> {
    let fixed = match name {
        "id" => Some(Column::Id),
        "tenant" => Some(Column::Tenant),
        "subject" => Some(Column::Subject),
        "kind" => Some(Column::Kind),
        "name" => Some(Column::Name),
        _ => None,
    };
    if fixed.is_some() {
        return fixed;
    }
    if let Some(key) = name.strip_prefix("custom.") {
        return Some(Column::Custom(key.to_owned()));
    }
    let (base, n) = match name.rsplit_once('_') {
        Some((base, n)) if n.bytes().all(|b| b.is_ascii_digit()) && !n.is_empty() => {
            let n: usize = n.parse().ok()?;
            if !(2..=MAX_LIST_ITEMS).contains(&n) {
                return None;
            }
            (base, n - 1)
        }
        _ => (name, 0),
    };
    Some(match base {
        "id_type" => Column::IdType(n),
        "id_number" => Column::IdNumber(n),
        "id_country" => Column::IdCountry(n),
        "phone" => Column::Phone(n),
        "email" => Column::Email(n),
        "address" => Column::Address(n),
        "bank_name" => Column::BankName(n),
        "bank_branch" => Column::BankBranch(n),
        "account_type" => Column::AccountType(n),
        "account_number" => Column::AccountNumber(n),
        _ => return None,
    })
}

fn columns(headers: &csv::ByteRecord, defaults: &Defaults) -> Result<Vec<Column>, String> {
    let mut out = Vec::with_capacity(headers.len());
    let mut problems = Vec::new();
    for (i, h) in headers.iter().enumerate() {
        let h = if i == 0 {
            h.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(h)
        } else {
            h
        };
        let Ok(name) = std::str::from_utf8(h) else {
            problems.push(format!("column {} has a name that is not UTF-8", i + 1));
            continue;
        };
        let name = name.trim();
        match column(name) {
            Some(c) if out.contains(&c) => {
                problems.push(format!("column `{name}` appears twice"));
            }
            Some(c) => out.push(c),
            None => problems.push(format!(
                "column {} `{}` is not one Coffer reads",
                i + 1,
                name.chars().take(64).collect::<String>()
            )),
        }
    }
    if !out.contains(&Column::Id) {
        problems.push("the `id` column is missing".into());
    }
    if defaults.tenant.is_none() && !out.contains(&Column::Tenant) {
        problems.push("the `tenant` column is missing (or pass --tenant)".into());
    }
    if defaults.kind.is_none() && !out.contains(&Column::Kind) {
        problems.push("the `kind` column is missing (or pass --kind)".into());
    }
    for c in &out {
        let partner = match c {
            Column::IdNumber(n) => Some((Column::IdType(*n), "id_type", "id_number")),
            Column::AccountNumber(n) => {
                Some((Column::AccountType(*n), "account_type", "account_number"))
            }
            _ => None,
        };
        if let Some((p, want, have)) = partner
            && !out.contains(&p)
        {
            problems.push(format!("`{have}` needs a `{want}` column beside it"));
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(format!(
            "wrong columns: {}. Columns Coffer reads: {COLUMNS}",
            problems.join("; ")
        ))
    }
}

/// A document's cells: type, number, country.
type DocCells = (Option<DocumentType>, Option<Sensitive>, Option<String>);
/// A bank account's cells: bank name, branch, account type, account number.
type BankCells = (
    Option<Sensitive>,
    Option<Sensitive>,
    Option<AccountType>,
    Option<Sensitive>,
);

fn row_to_record(
    row: &csv::ByteRecord,
    columns: &[Column],
    defaults: &Defaults,
) -> Result<CustomerRecord, RowError> {
    if row.len() != columns.len() {
        return Err(RowError {
            code: "input.columns",
            message: format!(
                "the row has {} fields, the header {}",
                row.len(),
                columns.len()
            ),
        });
    }
    let mut id = None;
    let mut tenant = defaults.tenant.clone();
    let mut subject = None;
    let mut kind = defaults.kind;
    let mut name = None;
    let mut docs: BTreeMap<usize, DocCells> = BTreeMap::new();
    let mut banks: BTreeMap<usize, BankCells> = BTreeMap::new();
    let mut phones = BTreeMap::new();
    let mut emails = BTreeMap::new();
    let mut addresses = BTreeMap::new();
    let mut custom = BTreeMap::new();
    for (cell, col) in row.iter().zip(columns) {
        let text = std::str::from_utf8(cell).map_err(|_| RowError {
            code: "input.encoding",
            message: format!(
                "column `{}` is not UTF-8 (is the file in GB18030 or another encoding? \
                 convert it with iconv -f GB18030 -t UTF-8)",
                column_name(col)
            ),
        })?;
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        let bad = |what: &str| RowError {
            code: "input.value",
            message: format!("column `{}`: {what}", column_name(col)),
        };
        match col {
            Column::Id => id = Some(text.to_owned()),
            Column::Tenant => tenant = Some(text.to_owned()),
            Column::Subject => subject = Some(text.to_owned()),
            Column::Kind => {
                kind = Some(
                    CustomerKind::parse(text)
                        .ok_or_else(|| bad("expected individual or company"))?,
                );
            }
            Column::Name => name = Some(Sensitive::new(text)),
            Column::IdType(n) => {
                docs.entry(*n).or_default().0 =
                    Some(DocumentType::parse(text).ok_or_else(|| {
                        bad(&format!(
                            "unknown document type (one of {})",
                            DocumentType::ALL.map(DocumentType::as_str).join(", ")
                        ))
                    })?);
            }
            Column::IdNumber(n) => docs.entry(*n).or_default().1 = Some(Sensitive::new(text)),
            Column::IdCountry(n) => docs.entry(*n).or_default().2 = Some(text.to_owned()),
            Column::Phone(n) => {
                phones.insert(*n, Sensitive::new(text));
            }
            Column::Email(n) => {
                emails.insert(*n, Sensitive::new(text));
            }
            Column::Address(n) => {
                addresses.insert(*n, Sensitive::new(text));
            }
            Column::BankName(n) => banks.entry(*n).or_default().0 = Some(Sensitive::new(text)),
            Column::BankBranch(n) => banks.entry(*n).or_default().1 = Some(Sensitive::new(text)),
            Column::AccountType(n) => {
                banks.entry(*n).or_default().2 =
                    Some(AccountType::parse(text).ok_or_else(|| {
                        bad("unknown account type (one of card, settlement, iban)")
                    })?);
            }
            Column::AccountNumber(n) => {
                banks.entry(*n).or_default().3 = Some(Sensitive::new(text));
            }
            Column::Custom(key) => {
                custom.insert(key.clone(), Sensitive::new(text));
            }
        }
    }
    let missing = |what: &str| RowError {
        code: "input.missing",
        message: format!("`{what}` is empty"),
    };
    let mut id_documents = Vec::new();
    for (n, (t, number, country)) in docs {
        match (t, number) {
            (Some(doc_type), Some(number)) => id_documents.push(IdDocument {
                doc_type,
                number,
                country,
            }),
            (None, None) => {}
            (None, Some(_)) => return Err(missing(&suffixed("id_type", n))),
            (Some(_), None) => return Err(missing(&suffixed("id_number", n))),
        }
    }
    let mut bank_accounts = Vec::new();
    for (n, (bank_name, branch, t, number)) in banks {
        match (t, number) {
            (Some(account_type), Some(account_number)) => bank_accounts.push(BankAccount {
                bank_name,
                branch,
                account_type,
                account_number,
            }),
            (None, None) if bank_name.is_none() && branch.is_none() => {}
            (None, _) => return Err(missing(&suffixed("account_type", n))),
            (Some(_), None) => return Err(missing(&suffixed("account_number", n))),
        }
    }
    Ok(CustomerRecord {
        id: id.ok_or_else(|| missing("id"))?,
        tenant: tenant.ok_or_else(|| missing("tenant"))?,
        subject,
        kind: kind.ok_or_else(|| missing("kind"))?,
        name,
        id_documents,
        phones: phones.into_values().collect(),
        emails: emails.into_values().collect(),
        addresses: addresses.into_values().collect(),
        bank_accounts,
        custom,
    })
}

fn suffixed(base: &str, n: usize) -> String {
    if n == 0 {
        base.to_owned()
    } else {
        format!("{base}_{}", n + 1)
    }
}

fn column_name(c: &Column) -> String {
    match c {
        Column::Id => "id".into(),
        Column::Tenant => "tenant".into(),
        Column::Subject => "subject".into(),
        Column::Kind => "kind".into(),
        Column::Name => "name".into(),
        Column::IdType(n) => suffixed("id_type", *n),
        Column::IdNumber(n) => suffixed("id_number", *n),
        Column::IdCountry(n) => suffixed("id_country", *n),
        Column::Phone(n) => suffixed("phone", *n),
        Column::Email(n) => suffixed("email", *n),
        Column::Address(n) => suffixed("address", *n),
        Column::BankName(n) => suffixed("bank_name", *n),
        Column::BankBranch(n) => suffixed("bank_branch", *n),
        Column::AccountType(n) => suffixed("account_type", *n),
        Column::AccountNumber(n) => suffixed("account_number", *n),
        Column::Custom(k) => format!("custom.{k}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(
        csv: &str,
        defaults: Defaults,
    ) -> Result<Vec<Result<CustomerRecord, RowError>>, Failure> {
        let dir = std::env::temp_dir().join(format!("coffer-cli-input-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(format!("{}.csv", csv.len()));
        std::fs::write(&p, csv).unwrap();
        let mut r = open(Some(&p), Format::Csv, defaults)?;
        let mut out = Vec::new();
        while let Some(row) = r.next_row() {
            out.push(row?.record);
        }
        Ok(out)
    }

    #[test]
    fn csv_columns_map_to_fields() {
        let out = rows(
            "\u{feff}id,tenant,kind,name,id_type,id_number,phone,phone_2,account_type,account_number,custom.vip\n\
             c-1,acme,individual,张三,cn_resident_id,11010119800101007X,13800000000,13900000000,card,6200000000000005,gold\n",
            Defaults::default(),
        )
        .unwrap();
        let r = out[0].as_ref().unwrap();
        assert_eq!(r.id, "c-1");
        assert_eq!(r.phones.len(), 2);
        assert_eq!(r.id_documents[0].number.expose(), "11010119800101007X");
        assert_eq!(r.bank_accounts[0].account_type, AccountType::Card);
        assert_eq!(r.custom["vip"].expose(), "gold");
    }

    #[test]
    fn wrong_columns_are_all_named() {
        let e = rows("id,nmae,id_number,phone_99\nx,y,z,w\n", Defaults::default())
            .err()
            .unwrap();
        for want in ["`nmae`", "`tenant`", "`kind`", "`id_type`", "`phone_99`"] {
            assert!(e.message.contains(want), "{want} in {}", e.message);
        }
    }

    #[test]
    fn bad_rows_are_errors_without_values() {
        let out = rows(
            "id,kind,name,id_type,id_number\n\
             c-1,individual,张三,secret_type,SECRET123\n\
             c-2,individual\n\
             c-3,individual,\u{0}\n",
            Defaults {
                tenant: Some("acme".into()),
                kind: None,
            },
        )
        .unwrap();
        let e = out[0].as_ref().err().unwrap();
        assert_eq!(e.code, "input.value");
        assert!(!e.message.contains("secret_type") && !e.message.contains("SECRET"));
        assert_eq!(out[1].as_ref().err().unwrap().code, "input.columns");
        assert_eq!(out.len(), 3);
    }

    #[test]
    fn non_utf8_cells_are_named() {
        let dir = std::env::temp_dir().join(format!("coffer-cli-gbk-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("gbk.csv");
        // "张三" in GB18030.
        std::fs::write(
            &p,
            b"id,tenant,kind,name\nc-1,acme,individual,\xd5\xc5\xc8\xfd\n",
        )
        .unwrap();
        let mut r = open(Some(&p), Format::Csv, Defaults::default()).unwrap();
        let e = r.next_row().unwrap().unwrap().record.err().unwrap();
        assert_eq!(e.code, "input.encoding");
        assert!(e.message.contains("`name`"));
    }
}
