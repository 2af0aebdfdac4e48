//! The metadata a compressed model carries: `.nqz` section 7
//! (`nq_quant::nqz::Metadata`), copied by `unpack` into the safetensors
//! `__metadata__`. It says what a user of the file outside nq-exp needs:
//! the architecture, how to prepare its input (the normalisation is written
//! nowhere else: without it an unpacked LeNet-5 loses 3 points on
//! Fashion-MNIST), what its outputs mean, and what made it.
//!
//! Keys (values are text; lists and objects are JSON):
//! - `architecture`, `dataset`: names as in grids (`lenet5`,
//!   `fashion-mnist`);
//! - `input.shape` (`[1, 28, 28]`), `input.mean`, `input.std` (per
//!   channel), `input.transform` (in words), `classes` (names by label,
//!   absent where the data names them);
//! - `nq-exp.version`, `nq-exp.revision` (git), and for a grid cell
//!   `nq-exp.experiment`, `nq-exp.cell` and `nq-exp.settings` (model,
//!   training and cell settings as resolved); `nq-exp compress` writes
//!   its own `nq-exp.*` keys instead.

use nq_catalog::Dataset;
use nq_quant::nqz::Metadata;
use serde::Serialize;

use crate::grid::spec::{CellSpec, Grid, ModelSpec, TrainSpec};

fn json(value: &impl Serialize) -> String {
    serde_json::to_string(value).expect("metadata values serialise to JSON")
}

/// `input.*` and `classes` for `dataset`, and its name, for images of
/// `shape` (channels, height, width) in `classes` classes as loaded (a
/// grid's `data_dir` may hold other sizes than the dataset's own; the
/// class names are given only when their number matches).
pub fn input(dataset: Dataset, shape: [usize; 3], classes: usize) -> Metadata {
    let format = dataset.input();
    let mut m = Metadata::new();
    m.insert("dataset".into(), dataset.as_str().into());
    m.insert("input.shape".into(), json(&shape));
    m.insert("input.mean".into(), json(&format.mean));
    m.insert("input.std".into(), json(&format.std));
    m.insert("input.transform".into(), format.transform.into());
    if let Some(names) = format.classes.filter(|names| names.len() == classes) {
        m.insert("classes".into(), json(&names));
    }
    m
}

/// The version of nq-exp and the git revision it ran at.
pub fn provenance(revision: &str) -> Metadata {
    Metadata::from([
        (
            "nq-exp.version".to_owned(),
            env!("CARGO_PKG_VERSION").to_owned(),
        ),
        ("nq-exp.revision".to_owned(), revision.to_owned()),
    ])
}

/// Everything above for the network of `cell` of `grid`, on images of
/// `shape` in `classes` classes, made at git `revision`.
pub fn for_cell(
    grid: &Grid,
    cell: &CellSpec,
    shape: [usize; 3],
    classes: usize,
    revision: &str,
) -> Metadata {
    #[derive(Serialize)]
    struct Settings<'a> {
        model: &'a ModelSpec,
        train: &'a TrainSpec,
        cell: &'a CellSpec,
    }
    let mut m = provenance(revision);
    if let Ok(dataset) = grid.model.dataset.parse::<Dataset>() {
        m.extend(input(dataset, shape, classes));
    }
    m.insert("architecture".into(), grid.model.arch.clone());
    m.insert("nq-exp.experiment".into(), grid.name.clone());
    m.insert("nq-exp.cell".into(), cell.id.clone());
    m.insert(
        "nq-exp.settings".into(),
        json(&Settings {
            model: &grid.model,
            train: &grid.train,
            cell,
        }),
    );
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fashion_mnist_says_how_to_normalise_and_what_the_labels_are() {
        let m = input(Dataset::FashionMnist, [1, 28, 28], 10);
        assert_eq!(m["input.mean"], "[0.286]");
        assert_eq!(m["input.std"], "[0.353]");
        assert_eq!(m["input.shape"], "[1,28,28]");
        let classes: Vec<String> = serde_json::from_str(&m["classes"]).unwrap();
        assert_eq!((classes.len(), classes[9].as_str()), (10, "Ankle boot"));
        assert!(!input(Dataset::Imagenet, [3, 224, 224], 1000).contains_key("classes"));
        // a grid's own data: its shape, and no names for another number of classes
        let m = input(Dataset::FashionMnist, [1, 12, 12], 4);
        assert_eq!(m["input.shape"], "[1,12,12]");
        assert!(!m.contains_key("classes"));
    }

    #[test]
    fn a_cell_names_itself_and_its_settings() {
        let grid = crate::grid::parse(
            "name = \"g\"\n[model]\narch = \"lenet5\"\ndataset = \"mnist\"\n\
             [train]\nepochs = 1\noptimizer = \"adam\"\nlr = 1e-3\nbatch_size = 64\n[grid]\nseed = [3]\nmethod = [\"kmeans\"]\nk = [4]\n",
            std::path::Path::new("g.toml"),
        )
        .unwrap();
        let m = for_cell(&grid, &grid.cells[0], [1, 28, 28], 10, "abc123");
        assert_eq!(m["architecture"], "lenet5");
        assert_eq!(m["dataset"], "mnist");
        assert_eq!(m["nq-exp.cell"], grid.cells[0].id);
        assert_eq!(m["nq-exp.revision"], "abc123");
        let settings: serde_json::Value = serde_json::from_str(&m["nq-exp.settings"]).unwrap();
        assert_eq!(settings["cell"]["seed"], 3);
        assert_eq!(settings["model"]["arch"], "lenet5");
    }
}
