//! A provider is one unit (ARCHITECTURE.md "Adding a provider"): every adapter the registry
//! lists has its config file in both shipped trees and its simulator in the sandbox, and the
//! sandbox simulates nothing the registry does not know. What derives from those lists is
//! checked here too: the mock upstreams of the tests, the simulators' standard ports (which the
//! deploy config and compose rely on) and the README's table of seeded references.

use std::collections::BTreeSet;
use std::path::PathBuf;

use cancelgate_gateway::registry::adapters;
use cancelgate_sandbox::{SandboxConfig, SimulatedProvider};

use crate::helpers::Upstreams;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn registered() -> BTreeSet<&'static str> {
    adapters().iter().map(|a| a.id().as_str()).collect()
}

#[test]
fn every_registered_provider_has_its_config_files_and_its_simulator() {
    let root = root();
    let registered = registered();
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

#[tokio::test]
async fn every_registered_provider_has_a_mock_upstream() {
    let upstreams = Upstreams::start().await;
    assert_eq!(upstreams.ids().collect::<BTreeSet<_>>(), registered(), "tests/api/helpers.rs Upstreams");
}

/// compose runs `cancelgate sandbox --host 0.0.0.0`: each simulator at its standard port, which
/// its deploy config must name.
#[test]
fn every_deploy_config_points_at_its_simulators_standard_port() {
    let standard = SandboxConfig::standard(std::net::Ipv4Addr::UNSPECIFIED.into(), 4100);
    let compose = std::fs::read_to_string(root().join("docker-compose.yml")).unwrap();
    assert!(compose.contains(r#"command: ["sandbox", "--host", "0.0.0.0"]"#), "compose starts the sandbox so");
    for p in SimulatedProvider::ALL {
        let file = root().join("deploy/config/providers").join(format!("{}.toml", p.id()));
        let text = std::fs::read_to_string(&file).unwrap();
        let want = format!("base_url = \"http://sandbox:{}\"", standard.addr(p).port());
        assert!(text.lines().any(|l| l.trim() == want), "{} should say {want}", file.display());
    }
}

/// The README's "Seeded sandbox references" rows: each is a row of the end-to-end table that
/// `sandbox_outcomes` runs, and each simulated provider has rows.
#[test]
fn the_readmes_seeded_references_are_the_checked_ones_for_every_provider() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let section = readme.split("### Seeded sandbox references").nth(1).expect("the README has the section");
    let section = section.split("\n#").next().unwrap_or(section);
    let mut rows = BTreeSet::new();
    for line in section.lines().filter(|l| l.starts_with("| ") && l.contains('`')) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let (provider, reference) = (cells[1], cells[2]);
        if let Some(reference) = reference.strip_prefix('`').and_then(|r| r.split('`').next()) {
            rows.insert((provider.to_owned(), reference.to_owned()));
        }
    }
    let checked: BTreeSet<(String, String)> =
        crate::sandbox_outcomes::TABLE.iter().map(|row| (row.0.to_owned(), row.1.to_owned())).collect();
    for row in &rows {
        assert!(checked.contains(row), "README row {row:?} is not in tests/api/sandbox_outcomes.rs TABLE");
    }
    for p in SimulatedProvider::ALL {
        assert!(rows.iter().any(|(provider, _)| provider == p.id()), "the README lists no seeded reference of {p}");
    }
}
