//! Reading and validating subscriber CSV, without the database: `ImportReader` against the
//! `csv` crate's raw record parsing of the same bytes (the reference: what any importer must
//! pay just to split the file).

use std::hint::black_box;
use std::path::Path;

use bulletin::subscriber_csv::{ImportReader, Row};
use criterion::{Criterion, Throughput, criterion_main};

const ROWS: usize = 10_000;

fn sample() -> Vec<u8> {
    let mut out = String::from("email,name,lang,lists,city\n");
    for i in 0..ROWS {
        out.push_str(&format!(
            "person.{i}@example{}.org,Person Number {i},{},,{}\n",
            i % 97,
            ["en", "fr", "es", "pt"][i % 4],
            ["Dhaka", "Bamako", "Bogotá", "Lima"][i % 4]
        ));
    }
    out.into_bytes()
}

fn parse(c: &mut Criterion) {
    let bytes = sample();
    let mut group = c.benchmark_group("import_parse");
    group.throughput(Throughput::Elements(ROWS as u64));
    group.bench_function("csv_crate_raw_records (reference)", |b| {
        b.iter(|| {
            let mut reader = csv::Reader::from_reader(bytes.as_slice());
            let mut record = csv::ByteRecord::new();
            let mut n = 0;
            while reader.read_byte_record(&mut record).unwrap_or(false) {
                n += record.len();
            }
            black_box(n)
        })
    });
    group.bench_function("import_reader_validated_rows", |b| {
        b.iter(|| {
            let mut reader = ImportReader::from_reader(
                Path::new("bench.csv"),
                Box::new(std::io::Cursor::new(bytes.clone())),
                Vec::new(),
                Vec::new(),
            )
            .unwrap_or_else(|e| panic!("{e}"));
            let mut n = 0;
            while let Some(Ok(Row::Record(r))) = reader.next_row() {
                n += r.line;
            }
            black_box(n)
        })
    });
    group.finish();
}

// The macros generate undocumented public functions.
#[allow(missing_docs)]
mod entry {
    criterion::criterion_group!(benches, super::parse);
}
criterion_main!(entry::benches);
