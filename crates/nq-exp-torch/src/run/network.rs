//! A fresh network of a grid's model: one of the built-in architectures,
//! initialised from tch's global seed, or the user's TorchScript module
//! (`arch = "torchscript"`), checked on a few test examples.

use anyhow::{Context, Result};
use nq_catalog::Arch;
use nq_nn::models::Model;
use rand::SeedableRng;
use regex::Regex;
use tch::Device;

use super::stages::Data;
use nq_exp::grid::spec::Grid;

/// The grid's network for `data` on `device`.
pub fn new_model(grid: &Grid, data: &Data, device: Device) -> Result<Model> {
    let arch: Arch = grid.model.arch.parse()?;
    let Some(file) = &grid.model.model_file else {
        return Ok(Model::new(arch, data.input(), device)?);
    };
    let pattern = grid.model.tensors.as_deref().unwrap_or(".");
    let select = Regex::new(pattern).with_context(|| format!("model.tensors: `{pattern}`"))?;
    let model = Model::torchscript(&file.path, data.input(), device, &|name| {
        select.is_match(name)
    })
    .map_err(|e| match &grid.model.tensors {
        // name the regex when it is what selected nothing
        Some(p) if e.to_string().contains("is selected") => {
            anyhow::anyhow!("{e} (model.tensors = `{p}` matches no such parameter)")
        }
        _ => e.into(),
    })?;
    let examples: Vec<usize> = (0..data.test.len().min(2)).collect();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let (x, _) = data.test.batch(&examples, false, &mut rng)?;
    model.probe(&x)?;
    Ok(model)
}
