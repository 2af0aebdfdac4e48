//! Universal quantization end to end on the tiny grid: pruned, layer by
//! layer and global, fine-tuned, with Huffman and with context coding. The
//! run itself checks that every `.nqz` decodes to the network bit for bit;
//! here the files are read again to see the dither in them.

use std::collections::HashSet;

use nq_quant::nqz;
use tempfile::TempDir;

mod common;
use common::*;

#[test]
fn universal_cells_pack_dithered_codebooks_that_decode_to_the_network() {
    let root = TempDir::new().unwrap();
    let text = unweighted_kmeans(GRID)
        .replace(
            "method = [\"none\", \"kmeans\"]",
            "method = [\"none\", \"uniform\", \"universal\"]",
        )
        .replace(
            "scope = [\"layer\", \"global\"]",
            "scope = [\"layer\", \"global\"]\ncoding = [\"huffman\", \"context\"]",
        )
        .replace("lambda = [0.01]\n", "");
    assert!(text.contains("\"universal\"]"), "{text}");
    let grid = write_grid(root.path(), &text);
    let results = root.path().join("results");
    let summary = run(&grid, &results);
    assert_eq!(summary["failed"], 0, "{summary}");
    let rows = rows(&results);
    let mut seen = 0;
    for scope in ["layer", "global"] {
        for coding in ["huffman", "context"] {
            let id = format!("s0.half.universal.k4.none.{scope}.{coding}.ft");
            let row = rows
                .iter()
                .find(|r| r["cell"] == id.as_str())
                .unwrap_or_else(|| panic!("no row {id}"));
            let uniform = rows
                .iter()
                .find(|r| r["cell"] == id.replace("universal", "uniform").as_str())
                .unwrap();
            // the same survivors; the dither may reach one more cell at
            // either end of the range
            assert_eq!(row["quantized_weights"], uniform["quantized_weights"]);
            assert!(row["clusters"].as_u64().unwrap() <= 6 * 3, "{row}");
            let bytes =
                std::fs::read(results.join("tiny/cells").join(&id).join("model.nqz")).unwrap();
            assert_eq!(u16::from_le_bytes([bytes[8], bytes[9]]), 4, "{id}");
            let file = nqz::decode(&bytes).unwrap();
            let books = if scope == "layer" { 3 } else { 1 };
            assert_eq!(file.dithers.len(), books, "{id}");
            assert!(file.dithers.iter().all(|d| d.is_some_and(|d| d.seed == 0)));
            // the weights are their centres less a different offset each:
            // far more distinct values than clusters
            let weights = file
                .tensors
                .iter()
                .find(|t| t.name == "conv1.weight")
                .unwrap();
            let distinct: HashSet<u32> = weights
                .values
                .iter()
                .filter(|v| **v != 0.0)
                .map(|v| v.to_bits())
                .collect();
            let clusters = file.codebooks[0].0.len();
            assert!(
                distinct.len() > 3 * clusters,
                "{id}: {} values",
                distinct.len()
            );
            seen += 1;
        }
    }
    assert_eq!(seen, 4);
}
