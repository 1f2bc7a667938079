//! A short replay of the committed fuzz corpus (`fuzz/corpus/<target>/`) through the very code
//! the fuzz targets run (`fuzz/targets.rs`): every input must decode to a value or an error,
//! never a panic. The long runs are `cargo +nightly fuzz run <target>` (README, "Fuzzing").

#[path = "../../../fuzz/targets.rs"]
mod targets;

use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) {
    let directory = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus").join(target);
    let mut inputs = 0;
    for entry in std::fs::read_dir(&directory).unwrap_or_else(|error| panic!("{}: {error}", directory.display())) {
        let path = entry.expect("entry").path();
        let bytes = std::fs::read(&path).expect("read input");
        let outcome = std::panic::catch_unwind(|| run(&bytes));
        assert!(outcome.is_ok(), "{target}: {} panicked", path.display());
        inputs += 1;
    }
    assert!(inputs > 0, "{}: the corpus is empty", directory.display());
}

#[test]
fn manifest_corpus_decodes_without_panics() {
    replay("manifest", targets::manifest);
}

#[test]
fn segment_corpus_decodes_without_panics() {
    replay("segment", targets::segment);
}

#[test]
fn snapshot_corpus_decodes_without_panics() {
    replay("snapshot", targets::snapshot);
}

#[test]
fn bbolt_corpus_decodes_without_panics() {
    replay("bbolt", targets::bbolt);
}

#[test]
fn etcd_layout_corpus_imports_without_panics() {
    replay("etcd_layout", targets::etcd_layout);
}

#[test]
fn etcd_wal_corpus_reads_without_panics() {
    replay("etcd_wal", targets::etcd_wal);
}

/// Seeds the `etcd_layout` target with the buckets of the real etcd snapshot the bbolt crate's
/// tests keep (`crates/bbolt/tests/fixtures/`).
#[test]
#[ignore = "writes fuzz/corpus/etcd_layout/seed-etcd-3.4.23; run once when the fixture changes"]
fn make_etcd_layout_seed() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let snapshot = std::fs::read(root.join("crates/bbolt/tests/fixtures/etcd-3.4.23-snapshot.db")).expect("fixture");
    let database = strata_bbolt::read(strata_bbolt::split_etcd_snapshot(&snapshot).0).expect("the fixture reads");
    let seed = targets::layout_input(&database);
    let directory = root.join("fuzz/corpus/etcd_layout");
    std::fs::create_dir_all(&directory).expect("mkdir");
    std::fs::write(directory.join("seed-etcd-3.4.23"), seed).expect("write seed");
}
