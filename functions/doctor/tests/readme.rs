//! The README's check catalogue table stays in sync with the registry, and its first lines
//! give exactly the two commands (demo, tests).

use std::path::Path;

fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md")).unwrap()
}

#[test]
fn catalogue_table_matches_the_registry() {
    let readme = readme();
    let rows: Vec<Vec<String>> = readme
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            l.trim_matches('|')
                .split('|')
                .map(|c| c.trim().trim_matches('`').to_string())
                .collect()
        })
        .filter(|cols: &Vec<String>| doctor::checks::find(&cols[0]).is_some())
        .collect();
    let registry = doctor::checks::registry();
    assert_eq!(
        rows.len(),
        registry.len(),
        "README lists {} checks, registry has {}",
        rows.len(),
        registry.len()
    );
    for (row, check) in rows.iter().zip(registry) {
        let m = check.meta();
        assert_eq!(row[0], m.id);
        assert_eq!(row[1], m.title, "{}", m.id);
        assert_eq!(row[2], m.runbook_step, "{}", m.id);
        assert_eq!(row[3], m.fix.to_string(), "{}", m.id);
    }
}

#[test]
fn first_lines_give_the_demo_and_test_commands() {
    let readme = readme();
    let head: Vec<&str> = readme.lines().take(12).collect();
    let commands: Vec<&&str> = head
        .iter()
        .filter(|l| l.starts_with("    ") || l.starts_with("$ "))
        .collect();
    assert_eq!(commands.len(), 2, "{head:#?}");
}
