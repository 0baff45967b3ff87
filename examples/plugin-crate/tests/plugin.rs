//! The plugin crate's binary is the whole CLI with its own plugins in it.

use std::process::Command;

fn rlvr(args: &[&str], cwd: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_rlvr-plugin-example"))
        .args(args)
        .current_dir(cwd)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

#[test]
fn the_plugin_runs_end_to_end_and_is_listed() {
    let tmp = tempdir();
    // The crate's directory is read at run time: cargo may reuse a binary built from another checkout.
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR when it runs tests");
    std::fs::copy(format!("{dir}/letters.toml"), tmp.join("letters.toml")).unwrap();
    let out = rlvr(&["run", "letters.toml"], &tmp);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("3 iterations run") && stdout.contains("eval/accuracy=1.0000"), "{stdout}");

    let envs = String::from_utf8_lossy(&rlvr(&["envs"], &tmp).stdout).to_string();
    assert!(envs.contains("letters/count-v0") && envs.contains("arith/arith-v0"), "{envs}");

    std::fs::write(tmp.join("cases.jsonl"), "{\"task\": {\"count\": 3}, \"completion\": \" 3\"}\n").unwrap();
    let out = rlvr(&["score", "--reward", "letters/count-match", "--input", "cases.jsonl"], &tmp);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        r#"{"reward":1.0,"terms":{"correct":1.0},"error":null,"details":{}}"#
    );
    std::fs::remove_dir_all(&tmp).unwrap();
}

#[test]
fn the_plugin_passes_the_conformance_checks() {
    let mut registry = rlvr_engine::Registry::new();
    rlvr_plugin_example::register(&mut registry);
    let spec = registry.make_env("letters/count-v0", &Default::default(), 0).unwrap();
    let rubric = registry.make_reward(&spec.default_reward, &Default::default()).unwrap();
    rlvr_engine::testing::assert_conformance(&spec, &rubric, &Default::default());
}

#[test]
fn the_tutorial_shows_this_crate_verbatim() {
    let doc = include_str!("../../../docs/plugins.md");
    assert!(doc.contains(include_str!("../src/lib.rs")), "docs/plugins.md must show src/lib.rs as it is");
}

fn tempdir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("rlvr-plugin-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}
