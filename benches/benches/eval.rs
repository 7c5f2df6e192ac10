//! Evaluation throughput: package-version decisions per second on one node
//! of the promised size, and a batch of 500 distinct inventories, each
//! prepared from facts and evaluated (what a server does after a baseline
//! edit). Run: `cargo bench -p patchfleet-benches --bench eval`.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use patchfleet_benches::{busy_baseline, rpm_node};
use patchfleet_core::eval::{CompiledBaseline, EvalOptions, evaluate};
use patchfleet_core::inventory::Inventory;
use std::hint::black_box;

/// 2025-07-01: inside some rules' delays and past others'.
const AT: i64 = 1_751_328_000;

fn node(c: &mut Criterion) {
    let baseline = CompiledBaseline::compile(&busy_baseline()).expect("bench baseline is valid");
    let facts = rpm_node(0);
    let inventory = Inventory::prepare(&facts).expect("bench facts are valid");
    let options = EvalOptions::scan_at(AT);
    let decisions = inventory.records.len() as u64;
    let mut group = c.benchmark_group("node");
    group.throughput(Throughput::Elements(decisions));
    group.bench_function("evaluate (elements = package-version decisions)", |b| {
        b.iter(|| evaluate(black_box(&baseline), black_box(&inventory), &options))
    });
    group.throughput(Throughput::Elements(1));
    group.bench_function("prepare inventory from facts", |b| {
        b.iter(|| Inventory::prepare(black_box(&facts)).unwrap())
    });
    group.bench_function("compile baseline", |b| {
        let raw = busy_baseline();
        b.iter(|| CompiledBaseline::compile(black_box(&raw)).unwrap())
    });
    group.finish();
}

fn batch(c: &mut Criterion) {
    let baseline = CompiledBaseline::compile(&busy_baseline()).expect("bench baseline is valid");
    let fleet: Vec<_> = (0..500).map(rpm_node).collect();
    let options = EvalOptions::scan_at(AT);
    let mut group = c.benchmark_group("batch");
    group.sample_size(10);
    group.throughput(Throughput::Elements(fleet.len() as u64));
    group.bench_function("500 distinct inventories: prepare + evaluate", |b| {
        b.iter(|| {
            for facts in &fleet {
                let inventory = Inventory::prepare(facts).unwrap();
                black_box(evaluate(&baseline, &inventory, &options));
            }
        })
    });
    let prepared: Vec<_> = fleet
        .iter()
        .map(|f| Inventory::prepare(f).unwrap())
        .collect();
    group.bench_function("500 prepared inventories: evaluate", |b| {
        b.iter_batched(
            || (),
            |()| {
                for inventory in &prepared {
                    black_box(evaluate(&baseline, inventory, &options));
                }
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, node, batch);
criterion_main!(benches);
