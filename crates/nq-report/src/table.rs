//! The results table of a grid on disk: `results.parquet` and
//! `results.csv`, written whole (temporary file, then rename) so a reader
//! never sees half a table.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use polars::prelude::{
    CsvWriter, DataFrame, IntoColumn, ParquetReader, ParquetWriter, SerReader, SerWriter, Series,
};

use crate::error::{io, ReportError, Result};
use crate::row::{column_names, to_frame, Row};

/// File name of the parquet table in a grid's results directory.
pub const PARQUET: &str = "results.parquet";
/// File name of the CSV table.
pub const CSV: &str = "results.csv";

/// Columns added to [`Row`] after results tables were first written (with
/// the searches, then with the task metric of language models, then with
/// compensated rounding); older tables are read with them empty.
const ADDED_LATER: [&str; 11] = [
    "search",
    "search_step",
    "search_budget",
    "search_reference",
    "baseline_loss",
    "pruned_loss",
    "quantized_loss",
    "rounding",
    "search_rate",
    "quantizer_seed",
    "finetune_trains",
];

/// Writes `bytes` to `path` through a temporary file in the same directory
/// and a rename, so that `path` is either the old file or the new one.
pub fn write_atomic(path: &Path, write: impl FnOnce(&mut File) -> Result<()>) -> Result<()> {
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let mut file = File::create(&tmp).map_err(io(&tmp))?;
    write(&mut file)?;
    file.flush().map_err(io(&tmp))?;
    file.sync_all().map_err(io(&tmp))?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(io(path))
}

/// Writes `text` to `path` atomically.
pub fn write_text(path: &Path, text: &str) -> Result<()> {
    write_atomic(path, |f| f.write_all(text.as_bytes()).map_err(io(path)))
}

/// Writes the rows of a grid as `dir/results.parquet` and
/// `dir/results.csv`, and returns their frame.
pub fn write_results(dir: &Path, rows: &[Row]) -> Result<DataFrame> {
    let mut df = to_frame(rows)?;
    write_frame(dir, &mut df)?;
    Ok(df)
}

/// Writes a results frame as `dir/results.parquet` and `dir/results.csv`;
/// returns the two paths.
pub fn write_frame(dir: &Path, df: &mut DataFrame) -> Result<Vec<std::path::PathBuf>> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    write_atomic(&dir.join(PARQUET), |f| {
        ParquetWriter::new(f).finish(df)?;
        Ok(())
    })?;
    write_atomic(&dir.join(CSV), |f| Ok(CsvWriter::new(f).finish(df)?))?;
    Ok(vec![dir.join(PARQUET), dir.join(CSV)])
}

/// Reads a `results.parquet` written by [`write_results`], checking that it
/// has every column of [`Row`].
pub fn read_results(path: &Path) -> Result<DataFrame> {
    let file = File::open(path).map_err(io(path))?;
    let df = ParquetReader::new(file)
        .finish()
        .map_err(|e| ReportError::BadResults {
            path: path.to_owned(),
            message: format!("not a results table: {e}"),
        })?;
    let mut df = df;
    let present: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|n| n.to_string())
        .collect();
    // tables written before these columns existed read as if they were empty
    let template = to_frame(&[Row::default()])?;
    for name in ADDED_LATER
        .iter()
        .filter(|c| !present.iter().any(|p| p == *c))
    {
        let dtype = template.column(name)?.dtype().clone();
        let nulls = Series::full_null((*name).into(), df.height(), &dtype);
        df.with_column(nulls.into_column())?;
    }
    let present: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|n| n.to_string())
        .collect();
    if let Some(missing) = column_names().iter().find(|c| !present.contains(c)) {
        return Err(ReportError::BadResults {
            path: path.to_owned(),
            message: format!(
                "no column `{missing}`: written by another version of nq-exp? Run the grid again"
            ),
        });
    }
    Ok(df)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_round_trip_through_parquet_and_csv() {
        let dir = tempfile::tempdir().unwrap();
        let rows = vec![
            Row {
                experiment: "g".into(),
                cell: "a".into(),
                k: Some(4),
                top1: Some(91.25),
                ..Row::default()
            },
            Row {
                experiment: "g".into(),
                cell: "b, with a comma".into(),
                error: Some("line 1\nline 2".into()),
                ..Row::default()
            },
        ];
        let written = write_results(dir.path(), &rows).unwrap();
        let read = read_results(&dir.path().join(PARQUET)).unwrap();
        assert!(read.equals_missing(&written));
        let csv = std::fs::read_to_string(dir.path().join(CSV)).unwrap();
        assert!(
            csv.starts_with("experiment,cell,index,status,error,"),
            "{csv}"
        );
        assert!(csv.contains("\"b, with a comma\""), "{csv}");
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n.to_string_lossy().contains(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn a_table_from_before_the_searches_reads_with_them_empty() {
        let dir = tempfile::tempdir().unwrap();
        let rows = vec![Row {
            experiment: "g".into(),
            cell: "a".into(),
            search: Some("s".into()),
            ..Row::default()
        }];
        let mut old = to_frame(&rows).unwrap();
        for name in ADDED_LATER {
            old = old.drop(name).unwrap();
        }
        let path = dir.path().join(PARQUET);
        ParquetWriter::new(File::create(&path).unwrap())
            .finish(&mut old)
            .unwrap();
        let read = read_results(&path).unwrap();
        assert_eq!(read.column("search").unwrap().null_count(), 1);
        assert_eq!(read.column("search_budget").unwrap().null_count(), 1);
        // a column that was always there is still required
        let mut broken = old.drop("top1").unwrap();
        ParquetWriter::new(File::create(&path).unwrap())
            .finish(&mut broken)
            .unwrap();
        let err = read_results(&path).unwrap_err().to_string();
        assert!(err.contains("no column `top1`"), "{err}");
    }

    #[test]
    fn a_file_that_is_not_a_table_names_itself() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(PARQUET);
        std::fs::write(&path, b"not parquet").unwrap();
        let err = read_results(&path).unwrap_err().to_string();
        assert!(
            err.contains("results.parquet") && err.contains("not a results table"),
            "{err}"
        );
    }
}
