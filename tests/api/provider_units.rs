//! A provider is one unit (ARCHITECTURE.md "Adding a provider"): every adapter the registry
//! lists has its config file in both shipped trees and its simulator in the sandbox, and the
//! sandbox simulates nothing the registry does not know.

use std::collections::BTreeSet;
use std::path::PathBuf;

use cancelgate_gateway::registry::adapters;
use cancelgate_sandbox::SimulatedProvider;

#[test]
fn every_registered_provider_has_its_config_files_and_its_simulator() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let registered: BTreeSet<&str> = adapters().iter().map(|a| a.id().as_str()).collect();
    assert!(!registered.is_empty());
    for id in &registered {
        for tree in ["config", "deploy/config"] {
            let file = root.join(tree).join("providers").join(format!("{id}.toml"));
            assert!(file.is_file(), "{id} is registered but has no {}", file.display());
        }
    }
    let simulated: BTreeSet<&str> = SimulatedProvider::ALL.iter().map(|p| p.id()).collect();
    assert_eq!(simulated, registered, "the sandbox simulates exactly the registered providers");
    for tree in ["config", "deploy/config"] {
        let dir = root.join(tree).join("providers");
        for entry in std::fs::read_dir(&dir).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            let id = name.strip_suffix(".toml").unwrap_or(&name);
            assert!(registered.contains(id), "{}/{name} configures no registered provider", dir.display());
        }
    }
}
