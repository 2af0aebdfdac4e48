//! The user's own examples as safetensors files (`dataset = "tensors"`).
//!
//! A directory holds `train.safetensors` and `test.safetensors`, each with
//! two tensors:
//! - `inputs`: float32, float16 or bfloat16, `N x ...` (1 to 3 dimensions
//!   after the first), handed to the network as stored (as float32): any
//!   normalisation is the user's, done before saving;
//! - `labels`: int64 or int32 class indices, `N`.
//!
//! The number of classes is one more than the largest label of either
//! split. From PyTorch:
//! `safetensors.torch.save_file({"inputs": x, "labels": y}, "train.safetensors")`.

use std::path::Path;

use tch::{Kind, Tensor};

use super::{InMemory, Splits};
use crate::error::{bad_file, Result};

/// The names of the two files in a tensors directory.
pub const FILES: [&str; 2] = ["train.safetensors", "test.safetensors"];

/// Loads `train.safetensors` and `test.safetensors` from `dir`.
pub fn load_dir(dir: &Path) -> Result<Splits> {
    let [train, test] = FILES.map(|name| read_split(&dir.join(name)));
    let (train, test) = (train?, test?);
    let shape = |t: &Tensor| t.size()[1..].to_vec();
    if shape(&train.0) != shape(&test.0) {
        return Err(bad_file(
            dir.join(FILES[1]),
            format!(
                "`inputs` has examples of shape {:?}, the training set {:?}",
                shape(&test.0),
                shape(&train.0)
            ),
        ));
    }
    let classes = 1 + max_label(&train.1).max(max_label(&test.1)).max(1);
    Ok(Splits {
        name: "tensors".into(),
        train: Box::new(InMemory::new(train.0, train.1, classes)?),
        test: Box::new(InMemory::new(test.0, test.1, classes)?),
    })
}

fn max_label(labels: &Tensor) -> i64 {
    if labels.numel() == 0 {
        0
    } else {
        labels.max().int64_value(&[])
    }
}

/// `inputs` (float32) and `labels` (int64) of one file, checked.
fn read_split(path: &Path) -> Result<(Tensor, Tensor)> {
    if !path.is_file() {
        return Err(bad_file(
            path,
            "no such file; a tensors dataset is a directory with train.safetensors and \
             test.safetensors, each holding `inputs` and `labels`",
        ));
    }
    let mut named = Tensor::read_safetensors(path)
        .map_err(|e| bad_file(path, format!("not a safetensors file: {e}")))?;
    let mut take = |name: &str| {
        named
            .iter()
            .position(|(n, _)| n == name)
            .map(|i| named.swap_remove(i).1)
            .ok_or_else(|| bad_file(path, format!("no tensor `{name}`")))
    };
    let (inputs, labels) = (take("inputs")?, take("labels")?);
    let bad = |name: &str, reason: String| bad_file(path, format!("tensor `{name}`: {reason}"));
    if !matches!(inputs.kind(), Kind::Float | Kind::Half | Kind::BFloat16) {
        return Err(bad(
            "inputs",
            format!("{:?}; expected float32, float16 or bfloat16", inputs.kind()),
        ));
    }
    let dims = inputs.dim();
    if !(2..=4).contains(&dims) {
        return Err(bad(
            "inputs",
            format!(
                "shape {:?}; expected N x ... with 1 to 3 dimensions per example",
                inputs.size()
            ),
        ));
    }
    let inputs = inputs.to_kind(Kind::Float);
    let non_finite = inputs
        .isfinite()
        .logical_not()
        .sum(Kind::Int64)
        .int64_value(&[]);
    if non_finite > 0 {
        return Err(bad(
            "inputs",
            format!("{non_finite} values are NaN or infinite"),
        ));
    }
    if !matches!(labels.kind(), Kind::Int64 | Kind::Int) || labels.size() != [inputs.size()[0]] {
        return Err(bad(
            "labels",
            format!(
                "{:?} {:?}; expected int64 or int32 class indices, one per input ({})",
                labels.kind(),
                labels.size(),
                inputs.size()[0]
            ),
        ));
    }
    let labels = labels.to_kind(Kind::Int64);
    if labels.numel() > 0 && labels.min().int64_value(&[]) < 0 {
        return Err(bad("labels", "negative class index".into()));
    }
    Ok((inputs, labels))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, tensors: &[(&str, Tensor)]) {
        Tensor::write_safetensors(tensors, dir.join(name)).unwrap();
    }

    #[test]
    fn a_directory_of_two_files_loads_with_its_classes_and_shape() {
        let dir = tempfile::tempdir().unwrap();
        let x = Tensor::arange(12, (Kind::Float, tch::Device::Cpu)).view([3, 4]);
        write(
            dir.path(),
            "train.safetensors",
            &[
                ("inputs", x.to_kind(Kind::Half)),
                ("labels", Tensor::from_slice(&[0i32, 2, 1])),
            ],
        );
        write(
            dir.path(),
            "test.safetensors",
            &[
                ("inputs", x.narrow(0, 0, 1)),
                ("labels", Tensor::from_slice(&[4i64])),
            ],
        );
        let s = load_dir(dir.path()).unwrap();
        assert_eq!((s.train.len(), s.test.len()), (3, 1));
        assert_eq!(s.train.classes(), 5);
        assert_eq!(s.train.image_shape(), [1, 1, 4]);
        let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(0);
        let (xb, yb) = s.train.batch(&[2], false, &mut rng).unwrap();
        assert_eq!(xb.size(), [1, 4]);
        assert_eq!(xb.double_value(&[0, 3]), 11.0);
        assert_eq!(yb.int64_value(&[0]), 1);
    }

    #[test]
    fn bad_files_name_the_file_and_the_tensor() {
        let dir = tempfile::tempdir().unwrap();
        let ok = |n: i64| {
            vec![
                (
                    "inputs",
                    Tensor::zeros([n, 2], (Kind::Float, tch::Device::Cpu)),
                ),
                (
                    "labels",
                    Tensor::zeros([n], (Kind::Int64, tch::Device::Cpu)),
                ),
            ]
        };
        let err = load_dir(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("train.safetensors") && err.contains("no such file"),
            "{err}"
        );
        write(dir.path(), "train.safetensors", &ok(2));
        let nan = Tensor::from_slice(&[0f32, f32::NAN]).view([1, 2]);
        write(
            dir.path(),
            "test.safetensors",
            &[("inputs", nan), ("labels", Tensor::from_slice(&[0i64]))],
        );
        let err = load_dir(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("test.safetensors") && err.contains("`inputs`") && err.contains("NaN"),
            "{err}"
        );
        write(dir.path(), "test.safetensors", &ok(2)[..1]);
        let err = load_dir(dir.path()).unwrap_err().to_string();
        assert!(err.contains("no tensor `labels`"), "{err}");
        write(
            dir.path(),
            "test.safetensors",
            &[ok(2).remove(0), ("labels", Tensor::from_slice(&[0i64]))],
        );
        let err = load_dir(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("`labels`") && err.contains("one per input (2)"),
            "{err}"
        );
        std::fs::write(dir.path().join("test.safetensors"), b"not one").unwrap();
        let err = load_dir(dir.path()).unwrap_err().to_string();
        assert!(err.contains("not a safetensors file"), "{err}");
    }
}
