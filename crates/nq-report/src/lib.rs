//! Results of nq-exp grids: one [`Row`] per cell, gathered into a polars
//! table (`results.parquet`, `results.csv`), summarised over seeds, and
//! turned into markdown tables (each grid, and the paper's Table 1 layout)
//! and plotters figures. No torch here: everything works from the results
//! files alone.
//!
//! Layout of a results directory (`nq-exp run --results DIR`):
//!
//! ```text
//! DIR/<grid>/results.parquet, results.csv   one row per cell
//! DIR/<grid>/report.md                      its table (nq-exp report)
//! DIR/<grid>/figures/*.svg, *.png           its figures (nq-exp figures)
//! DIR/table1.md                             Table 1 over the grids named *table1*
//! DIR/findings.md                           the paper's claims judged (table1, fig1, fig2, review, sensitivity grids)
//! DIR/reference_comparison.md               Table 1 against a reference run (--reference)
//! ```

pub mod compare;
mod error;
pub mod figures;
pub mod findings;
pub mod markdown;
pub mod merge;
pub mod rate;
pub mod row;
pub mod sensitivity;
pub mod summary;
pub mod table;
pub mod verdict;

use std::fmt::Write;
use std::path::{Path, PathBuf};

use polars::prelude::*;

pub use error::{ReportError, Result};
pub use row::{FinetuneTrains, Row};

/// The grids under a results directory: subdirectories holding a
/// `results.parquet`, sorted by name.
pub fn grids(results: &Path) -> Result<Vec<(String, PathBuf)>> {
    let entries = std::fs::read_dir(results).map_err(error::io(results))?;
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(error::io(results))?;
        let table = entry.path().join(table::PARQUET);
        if table.is_file() {
            out.push((entry.file_name().to_string_lossy().into_owned(), table));
        }
    }
    out.sort();
    if out.is_empty() {
        return Err(ReportError::BadResults {
            path: results.to_owned(),
            message: format!(
                "no grid results here (no */{}): run `nq-exp run GRID.toml --results {}` first",
                table::PARQUET,
                results.display()
            ),
        });
    }
    Ok(out)
}

fn failures(df: &DataFrame) -> Result<Vec<(String, String)>> {
    let failed = df
        .clone()
        .lazy()
        .filter(col("status").neq(lit("ok")))
        .select([col("cell"), col("error")])
        .collect()?;
    let cells = failed.column("cell")?.str()?.clone();
    let errors = failed.column("error")?.str()?.clone();
    Ok(cells
        .into_iter()
        .zip(&errors)
        .map(|(c, e)| (c.unwrap_or("").to_owned(), e.unwrap_or("").to_owned()))
        .collect())
}

/// The settings of every grid under `results` whose name contains `table1`.
fn read_table1_settings(results: &Path) -> Result<Vec<summary::Setting>> {
    let mut out = Vec::new();
    for (name, parquet) in grids(results)? {
        if name.contains("table1") {
            out.extend(summary::settings(&table::read_results(&parquet)?)?);
        }
    }
    Ok(out)
}

/// Writes `DIR/<grid>/report.md` for every grid under `results`,
/// `DIR/table1.md` when some grid's name contains `table1`, `DIR/findings.md`
/// when a grid tests one of the paper's claims, and, given a `reference`
/// results directory, `DIR/reference_comparison.md`; returns the files
/// written.
pub fn write_reports(results: &Path, reference: Option<&Path>) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let mut table1_settings = Vec::new();
    let mut every_grid: Vec<findings::GridSettings> = Vec::new();
    for (name, parquet) in grids(results)? {
        let df = table::read_results(&parquet)?;
        let settings = summary::settings(&df)?;
        let mut text = format!("# {name}\n\n");
        let _ = writeln!(
            text,
            "{} cells, {} settings (mean ± sample standard deviation over seeds).\n",
            df.height(),
            settings.len()
        );
        if !settings.is_empty() {
            text += &markdown::grid_table(&settings);
        }
        let searches = markdown::searches(&settings);
        if !searches.is_empty() {
            // a searched grid outside Table 1: its picks in Table 1's layout
            if !name.contains("table1") {
                let _ = write!(
                    text,
                    "\n## Picks in Table 1's layout\n\n{}",
                    markdown::table1(&settings)
                );
            }
            let _ = write!(
                text,
                "\n## Searches\n\nThe points each search tried, in order (the task metric, top-1 \
                 or bits per character, as mean ± std over the seeds; in: within the budget of \
                 the reference):\n\n{searches}"
            );
        }
        let at_rate = rate::section(&settings);
        if !at_rate.is_empty() {
            let _ = write!(text, "\n{at_rate}");
        }
        let by_source = sensitivity::section(&settings);
        if !by_source.is_empty() {
            let _ = write!(text, "\n{by_source}");
        }
        let failed = failures(&df)?;
        if !failed.is_empty() {
            let _ = writeln!(text, "\n## Failed cells\n");
            for (cell, error) in &failed {
                let _ = writeln!(text, "- `{cell}`: {}", error.replace('\n', " "));
            }
        }
        let path = parquet.with_file_name("report.md");
        table::write_text(&path, &text)?;
        written.push(path);
        if name.contains("table1") {
            table1_settings.extend(settings.iter().cloned());
        }
        every_grid.push((name, settings));
    }
    if every_grid.iter().any(|(name, _)| {
        ["table1", "fig1", "fig2", "review", "sensitivity"]
            .iter()
            .any(|n| name.contains(n))
    }) {
        let path = results.join("findings.md");
        table::write_text(&path, &findings::findings(&every_grid))?;
        written.push(path);
    }
    if let Some(reference) = reference {
        let theirs = read_table1_settings(reference)?;
        let path = results.join("reference_comparison.md");
        table::write_text(
            &path,
            &compare::reference_comparison(&table1_settings, &theirs),
        )?;
        written.push(path);
    }
    if !table1_settings.is_empty() {
        let mut text = format!(
            "# Table 1 layout: pruned networks, all layers quantized, Huffman coding (and context \
                 coding in its own rows where a grid has it), fine-tuned\n\n{}",
            markdown::table1(&table1_settings)
        );
        let searches = markdown::searches(&table1_settings);
        if !searches.is_empty() {
            let _ = write!(text, "\n## The points each search tried\n\n{searches}");
        }
        let path = results.join("table1.md");
        table::write_text(&path, &text)?;
        written.push(path);
    }
    Ok(written)
}

/// Writes the figures of every grid under `results` into
/// `DIR/<grid>/figures/`; returns the files written.
pub fn write_figures(results: &Path) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for (name, parquet) in grids(results)? {
        let df = table::read_results(&parquet)?;
        let settings = summary::settings(&df)?;
        let dir = parquet.with_file_name("figures");
        for fig in figures::figures(&name, &settings) {
            written.extend(figures::write_figure(&fig, &dir)?);
        }
    }
    Ok(written)
}
