//! Several grids' results as one table (`nq-exp merge`), so that one report
//! and one set of figures compare methods that different grids ran (the
//! paper's methods, sparser networks, universal quantization, soft
//! weight-sharing) on the same network and data.

use std::path::{Path, PathBuf};

use polars::prelude::*;

use crate::error::{ReportError, Result};
use crate::row::column_names;
use crate::table::{read_results, write_frame, PARQUET};

/// Reads `grids` (results directories of grids, each holding a
/// `results.parquet`), renames their rows' experiment `name`, keeps the
/// first row of each cell that several grids share (a cached cell has the
/// same id and measurements in each), and writes them as
/// `out/results.parquet` and `out/results.csv`. All rows must be of one
/// model and data set. Returns the files written.
pub fn merge_grids(grids: &[PathBuf], name: &str, out: &Path) -> Result<Vec<PathBuf>> {
    let bad = |path: &Path, message: String| ReportError::BadResults {
        path: path.to_owned(),
        message,
    };
    if grids.is_empty() {
        return Err(bad(out, "no grids to merge".into()));
    }
    let columns: Vec<PlSmallStr> = column_names().into_iter().map(Into::into).collect();
    let mut merged: Option<DataFrame> = None;
    for dir in grids {
        if dir == out {
            return Err(bad(dir, "is the output: it would be overwritten".into()));
        }
        let df = read_results(&dir.join(PARQUET))?.select(columns.clone())?;
        merged = Some(match merged {
            None => df,
            Some(m) => m.vstack(&df)?,
        });
    }
    let merged = merged.expect("at least one grid");
    for key in ["model", "dataset"] {
        let values = merged.column(key)?.as_materialized_series().unique()?;
        if values.len() > 1 {
            return Err(bad(
                out,
                format!(
                    "the grids mix {key}s ({}): merge grids of one network and data set",
                    values
                        .str()?
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
    }
    let mut merged = merged
        .lazy()
        .with_column(lit(name).alias("experiment"))
        .collect()?
        .unique_stable(Some(&["cell".into()]), UniqueKeepStrategy::First, None)?;
    write_frame(out, &mut merged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::row::Row;
    use crate::table::write_results;

    fn row(experiment: &str, cell: &str, dataset: &str, top1: f64) -> Row {
        Row {
            experiment: experiment.into(),
            cell: cell.into(),
            status: "ok".into(),
            model: "lenet5".into(),
            dataset: dataset.into(),
            method: "uniform".into(),
            top1: Some(top1),
            ..Row::default()
        }
    }

    #[test]
    fn shared_cells_appear_once_under_the_new_name() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        write_results(
            &a,
            &[
                row("a", "s0.x", "mnist", 90.0),
                row("a", "s0.y", "mnist", 91.0),
            ],
        )
        .unwrap();
        write_results(
            &b,
            &[
                row("b", "s0.y", "mnist", 91.0),
                row("b", "s0.z", "mnist", 92.0),
            ],
        )
        .unwrap();
        let out = dir.path().join("both");
        let written = merge_grids(&[a.clone(), b.clone()], "both", &out).unwrap();
        assert_eq!(written, vec![out.join(PARQUET), out.join("results.csv")]);
        let df = read_results(&out.join(PARQUET)).unwrap();
        let cells: Vec<&str> = df
            .column("cell")
            .unwrap()
            .str()
            .unwrap()
            .into_iter()
            .flatten()
            .collect();
        assert_eq!(cells, ["s0.x", "s0.y", "s0.z"]);
        let names = df
            .column("experiment")
            .unwrap()
            .as_materialized_series()
            .unique()
            .unwrap();
        assert_eq!(names.str().unwrap().get(0), Some("both"));
        assert_eq!(names.len(), 1);

        // another data set, a missing grid, the output among the inputs
        let c = dir.path().join("c");
        write_results(&c, &[row("c", "s0.w", "fashion-mnist", 80.0)]).unwrap();
        let err = merge_grids(&[a.clone(), c], "x", &out)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("mix datasets") && err.contains("fashion-mnist"),
            "{err}"
        );
        let err = merge_grids(&[dir.path().join("gone")], "x", &out)
            .unwrap_err()
            .to_string();
        assert!(err.contains("gone"), "{err}");
        let err = merge_grids(&[a, out.clone()], "x", &out)
            .unwrap_err()
            .to_string();
        assert!(err.contains("would be overwritten"), "{err}");
    }
}
