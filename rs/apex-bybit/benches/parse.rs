//! Criterion benchmark: order-book archive lines (ob200-like deltas) parsed into `book` columns.

use apex_bybit::LineParser;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn archive_lines(messages: usize) -> Vec<u8> {
    let mut out = String::new();
    for n in 0..messages {
        let levels = |base: f64, step: f64| {
            (0..(n % 7 + 1))
                .map(|k| format!("[\"{:.1}\",\"{:.3}\"]", base + step * k as f64, ((n * 7 + k) % 1000) as f64 / 1000.0))
                .collect::<Vec<_>>()
                .join(",")
        };
        out.push_str(&format!(
            "{{\"topic\":\"orderbook.200.BTCUSDT\",\"type\":\"delta\",\"ts\":{},\"data\":{{\"s\":\"BTCUSDT\",\"b\":[{}],\"a\":[{}],\"u\":{},\"seq\":{}}},\"cts\":{}}}\n",
            1_700_000_000_000_u64 + n as u64 * 100,
            levels(60_000.0, -0.1),
            levels(60_000.1, 0.1),
            n + 1,
            n * 3 + 1,
            1_700_000_000_000_u64 + n as u64 * 100 - 2,
        ));
    }
    out.into_bytes()
}

fn parse(c: &mut Criterion) {
    let data = archive_lines(20_000);
    let mut group = c.benchmark_group("parse");
    group.throughput(Throughput::Elements(20_000));
    group.bench_function("orderbook_lines", |b| {
        b.iter(|| {
            let mut parser = LineParser::new();
            parser.push_lines(&data, 1).unwrap();
            parser.book.len()
        });
    });
    group.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);
