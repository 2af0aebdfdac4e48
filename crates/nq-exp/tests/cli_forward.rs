//! The `nq-exp` binary does not load libtorch: it hands `run`, `train` and
//! `importance` to `nq-exp-torch` with the arguments as given and that
//! binary's exit status, and says clearly when that binary is missing.

#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;

use assert_cmd::Command;
use tempfile::TempDir;

fn nq() -> Command {
    Command::cargo_bin("nq-exp").unwrap()
}

/// A stand-in for nq-exp-torch that prints its arguments and exits 3.
fn fake_torch_binary(dir: &TempDir) -> std::path::PathBuf {
    let path = dir.path().join("fake-nq-exp-torch");
    std::fs::write(&path, "#!/bin/sh\necho \"$@\"\nexit 3\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[test]
fn run_train_and_importance_go_to_the_torch_binary_as_given() {
    let dir = TempDir::new().unwrap();
    let fake = fake_torch_binary(&dir);
    for args in [
        vec!["run", "grid.toml", "--jobs", "2", "--force"],
        vec!["train", "--arch", "lenet5", "--help"],
        vec!["importance", "--arch", "lenet5", "--samples", "-1"],
    ] {
        let out = nq()
            .env("NQ_EXP_TORCH", &fake)
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(3), "{args:?}");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), args.join(" "));
    }
}

#[test]
fn a_missing_torch_binary_is_bad_input_with_its_path() {
    let out = nq()
        .env("NQ_EXP_TORCH", "/no/such/nq-exp-torch")
        .args(["run", "grid.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/no/such/nq-exp-torch"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[cfg(target_os = "linux")]
#[test]
fn the_binary_links_no_libtorch() {
    let binary = assert_cmd::cargo::cargo_bin("nq-exp");
    let Ok(ldd) = std::process::Command::new("ldd").arg(&binary).output() else {
        panic!(
            "ldd is needed to list the libraries of {}",
            binary.display()
        );
    };
    let libraries = String::from_utf8_lossy(&ldd.stdout);
    assert!(ldd.status.success(), "ldd failed: {libraries}");
    assert!(
        !libraries.contains("torch") && !libraries.contains("libc10"),
        "{libraries}"
    );
}
