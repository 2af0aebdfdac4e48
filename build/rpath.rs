//! Build script shared by the crates that link libtorch (`nq-nn`, `nq-exp`; each lists
//! `build = "../../build/rpath.rs"` and a direct `torch-sys` dependency to get its
//! metadata).
//!
//! torch-sys (`links = "tch"`) prints `cargo:libtorch_lib=DIR`, which cargo hands to its
//! direct dependents' build scripts as `DEP_TCH_LIBTORCH_LIB` (older docs call it
//! `DEP_TORCH_SYS_LIBTORCH_LIB`; both are read). This script then:
//!
//! - adds `-Wl,-rpath,DIR` to every binary of the crate (bins, tests, benches,
//!   examples), so they find libtorch without `LD_LIBRARY_PATH`; DIR is kept as given
//!   (`<repo>/.libtorch/lib` by default), so re-pointing the link needs no rebuild;
//! - on Linux, links `libtorch` with `--no-as-needed`, as tch's own build script does
//!   for its targets: otherwise the linker drops `libtorch_cuda.so` (nothing refers
//!   to it by symbol) and `tch::Cuda::is_available()` is false on a GPU machine;
//! - sets `NQ_LIBTORCH_VERSION` for `env!`, read from `build-version` (libtorch
//!   archive) or `version.py` (PyTorch wheel) beside DIR, or "unknown".

use std::path::Path;

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    println!("cargo:rerun-if-env-changed=DEP_TORCH_SYS_LIBTORCH_LIB");
    let lib_dir = ["DEP_TCH_LIBTORCH_LIB", "DEP_TORCH_SYS_LIBTORCH_LIB"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()));
    let Some(lib_dir) = lib_dir else {
        println!(
            "cargo:warning=torch-sys did not report its libtorch lib dir \
             (no DEP_TCH_LIBTORCH_LIB): binaries will need LD_LIBRARY_PATH"
        );
        println!("cargo:rustc-env=NQ_LIBTORCH_VERSION=unknown");
        return;
    };

    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os != "windows" {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib_dir}");
    }
    if os == "linux" {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-ltorch");
    }

    let root = Path::new(&lib_dir).parent().unwrap_or(Path::new(&lib_dir));
    let version = libtorch_version(root).unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=NQ_LIBTORCH_VERSION={version}");
}

/// Reads the libtorch version beside `root/lib`, and asks cargo to rerun when that file
/// changes (a reinstalled torch).
fn libtorch_version(root: &Path) -> Option<String> {
    let archive = root.join("build-version");
    if let Ok(text) = std::fs::read_to_string(&archive) {
        println!("cargo:rerun-if-changed={}", archive.display());
        return Some(text.trim().to_owned()).filter(|v| !v.is_empty());
    }
    let wheel = root.join("version.py");
    let text = std::fs::read_to_string(&wheel).ok()?;
    println!("cargo:rerun-if-changed={}", wheel.display());
    text.lines().find_map(|line| {
        let value = line
            .strip_prefix("__version__")?
            .trim_start()
            .strip_prefix('=')?;
        Some(
            value
                .trim()
                .trim_matches(|c| c == '\'' || c == '"')
                .to_owned(),
        )
    })
}
