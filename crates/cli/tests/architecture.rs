//! The crate graph points one way: each crate may depend only on crates below it in
//! ARCHITECTURE.md's table. Read from the workspace's Cargo.toml files, so a new edge that breaks
//! the layering fails here.

use std::path::Path;

/// Layers from the bottom; a crate may depend on crates of lower layers only.
const LAYERS: &[&[&str]] = &[
    &["strata-types", "strata-io", "strata-bbolt"],
    &["strata-segment-log", "strata-snapshot", "strata-mvcc", "strata-lease", "strata-auth"],
    &["strata-node"],
    &["strata-etcd-api"],
    &["strata-bench"],
    &["strata"],
];

fn layer_of(name: &str) -> usize {
    LAYERS.iter().position(|layer| layer.contains(&name)).unwrap_or_else(|| panic!("crate {name} is in no layer: add it to ARCHITECTURE.md and this test"))
}

/// The package name and the `strata-*` crates named in `[dependencies]` of one Cargo.toml.
fn dependencies(manifest: &str) -> (String, Vec<String>) {
    let mut name = String::new();
    let mut section = String::new();
    let mut found = Vec::new();
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            section = line.to_string();
        } else if section == "[package]" && line.starts_with("name") {
            name = line.split('"').nth(1).unwrap_or_default().to_string();
        } else if section == "[dependencies]" && line.starts_with("strata-") {
            found.push(line.split([' ', '=']).next().unwrap_or_default().to_string());
        }
    }
    (name, found)
}

#[test]
fn dependencies_point_down_the_layers() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut checked = 0;
    for entry in std::fs::read_dir(crates).unwrap() {
        let manifest = entry.unwrap().path().join("Cargo.toml");
        let Ok(text) = std::fs::read_to_string(&manifest) else { continue };
        let (name, dependencies) = dependencies(&text);
        for dependency in dependencies {
            assert!(
                layer_of(&dependency) < layer_of(&name),
                "{name} depends on {dependency}, which is not in a lower layer (see ARCHITECTURE.md)"
            );
        }
        checked += 1;
    }
    assert!(checked >= LAYERS.iter().map(|layer| layer.len()).sum::<usize>(), "every crate was checked");
}
