//! CIFAR-10 in its binary version (Krizhevsky 2009,
//! <https://www.cs.toronto.edu/~kriz/cifar.html>): `data_batch_1.bin` ..
//! `data_batch_5.bin` and `test_batch.bin`, each 10,000 records of one
//! label byte and 3,072 pixel bytes (1,024 red, green, blue, row-major).
//!
//! Images are scaled to [0, 1] and normalised per channel with the training
//! set's mean (0.4914, 0.4822, 0.4465) and standard deviation (0.2470,
//! 0.2435, 0.2616). Training batches get the standard augmentation of He et
//! al. 2016: zero padding of 4, a random 32x32 crop, a random horizontal
//! flip.

use std::path::Path;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use tch::{Kind, Tensor};

use super::{InMemory, Splits};
use crate::error::{bad_file, Result};

const RECORD: usize = 1 + 3 * 32 * 32;

/// Reads whole records from one batch file.
fn read_batch(path: &Path) -> Result<(Vec<u8>, Vec<u8>)> {
    let bytes = std::fs::read(path).map_err(|e| bad_file(path, format!("cannot read: {e}")))?;
    if bytes.is_empty() || bytes.len() % RECORD != 0 {
        return Err(bad_file(
            path,
            format!(
                "{} bytes, not a whole number of {RECORD}-byte CIFAR-10 records",
                bytes.len()
            ),
        ));
    }
    let (mut labels, mut pixels) = (Vec::new(), Vec::with_capacity(bytes.len()));
    for (i, record) in bytes.chunks_exact(RECORD).enumerate() {
        if record[0] >= 10 {
            return Err(bad_file(
                path,
                format!("record {i} has label {}, expected 0..9", record[0]),
            ));
        }
        labels.push(record[0]);
        pixels.extend_from_slice(&record[1..]);
    }
    Ok((labels, pixels))
}

fn to_tensors(labels: Vec<u8>, pixels: Vec<u8>) -> Result<InMemory> {
    let n = labels.len() as i64;
    let x = Tensor::from_slice(&pixels)
        .to_kind(Kind::Float)
        .view([n, 3, 32, 32])
        / 255.0;
    let input = nq_catalog::Dataset::Cifar10.input();
    let mean = super::per_channel(input.mean, &[1, 3, 1, 1]);
    let std = super::per_channel(input.std, &[1, 3, 1, 1]);
    let y = Tensor::from_slice(&labels).to_kind(Kind::Int64);
    InMemory::new((x - mean) / std, y, 10)
}

/// Pad 4, random 32x32 crop, random horizontal flip, per image.
pub fn augment(images: &Tensor, rng: &mut ChaCha8Rng) -> Tensor {
    let size = images.size();
    let (n, h, w) = (size[0], size[2], size[3]);
    let padded = images.constant_pad_nd([4, 4, 4, 4]);
    let crops: Vec<Tensor> = (0..n)
        .map(|i| {
            let (dy, dx) = (rng.random_range(0..=8), rng.random_range(0..=8));
            let crop = padded.get(i).narrow(1, dy, h).narrow(2, dx, w);
            if rng.random_bool(0.5) {
                crop.flip([2])
            } else {
                crop
            }
        })
        .collect();
    Tensor::stack(&crops, 0)
}

/// CIFAR-10 from the binary batches in `dir`.
pub fn load_dir(dir: &Path) -> Result<Splits> {
    let missing = |name: &str| {
        bad_file(
            dir.join(name),
            "missing: CIFAR-10 needs data_batch_1.bin .. data_batch_5.bin and test_batch.bin \
             (the binary version from https://www.cs.toronto.edu/~kriz/cifar.html); point \
             data_dir (grids) or --data-dir at their directory",
        )
    };
    let (mut labels, mut pixels) = (Vec::new(), Vec::new());
    for b in 1..=5 {
        let name = format!("data_batch_{b}.bin");
        let path = dir.join(&name);
        if !path.is_file() {
            return Err(missing(&name));
        }
        let (l, p) = read_batch(&path)?;
        labels.extend(l);
        pixels.extend(p);
    }
    let test_path = dir.join("test_batch.bin");
    if !test_path.is_file() {
        return Err(missing("test_batch.bin"));
    }
    let (tl, tp) = read_batch(&test_path)?;
    Ok(Splits {
        name: "cifar10".into(),
        train: Box::new(to_tensors(labels, pixels)?.with_augmentation(augment)),
        test: Box::new(to_tensors(tl, tp)?),
    })
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    /// `n` records; record `i` has label `i % 10` and every pixel `i`.
    fn batch(n: usize) -> Vec<u8> {
        (0..n)
            .flat_map(|i| std::iter::once((i % 10) as u8).chain(std::iter::repeat_n(i as u8, 3072)))
            .collect()
    }

    fn write_all(dir: &Path) {
        for b in 1..=5 {
            std::fs::write(dir.join(format!("data_batch_{b}.bin")), batch(2)).unwrap();
        }
        std::fs::write(dir.join("test_batch.bin"), batch(3)).unwrap();
    }

    #[test]
    fn reads_generated_batches_by_hand() {
        let dir = tempfile::tempdir().unwrap();
        write_all(dir.path());
        let s = load_dir(dir.path()).unwrap();
        assert_eq!((s.train.len(), s.test.len()), (10, 3));
        assert_eq!(s.train.image_shape(), [3, 32, 32]);
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let (x, y) = s.test.batch(&[2], false, &mut rng).unwrap();
        assert_eq!(Vec::<i64>::try_from(&y).unwrap(), vec![2]);
        // pixel 2 / 255 in the green channel: (2/255 - 0.4822) / 0.2435
        let want = (2.0 / 255.0 - 0.4822) / 0.2435;
        assert!((x.double_value(&[0, 1, 5, 7]) - want).abs() < 1e-5);
    }

    #[test]
    fn bad_files_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        write_all(dir.path());
        std::fs::write(dir.path().join("data_batch_3.bin"), &batch(2)[..100]).unwrap();
        let err = load_dir(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("data_batch_3.bin") && err.contains("3073-byte"),
            "{err}"
        );
        let mut bad_label = batch(1);
        bad_label[0] = 11;
        std::fs::write(dir.path().join("data_batch_3.bin"), bad_label).unwrap();
        let err = load_dir(dir.path()).unwrap_err().to_string();
        assert!(err.contains("label 11"), "{err}");
        std::fs::remove_file(dir.path().join("test_batch.bin")).unwrap();
        write_all(dir.path());
        std::fs::remove_file(dir.path().join("test_batch.bin")).unwrap();
        let err = load_dir(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("test_batch.bin") && err.contains("data_dir"),
            "{err}"
        );
    }

    #[test]
    fn augmentation_crops_and_flips() {
        // one image whose pixel value is its column index
        let cols = Tensor::arange(32, (Kind::Float, tch::Device::Cpu))
            .view([1, 1, 1, 32])
            .expand([1, 3, 32, 32], false)
            .contiguous();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut flipped = false;
        for _ in 0..20 {
            let out = augment(&cols, &mut rng);
            assert_eq!(out.size(), vec![1, 3, 32, 32]);
            // a shifted (and maybe mirrored) ramp with zero padding: each
            // row is the same, and nonzero values differ by exactly 1
            let row = Vec::<f32>::try_from(out.get(0).get(0).get(10)).unwrap();
            let nz: Vec<f32> = row.iter().copied().filter(|&v| v != 0.0).collect();
            let steps: Vec<f32> = nz.windows(2).map(|w| w[1] - w[0]).collect();
            assert!(
                steps.iter().all(|&s| s == 1.0) || steps.iter().all(|&s| s == -1.0),
                "{row:?}"
            );
            flipped |= steps.first() == Some(&-1.0);
        }
        assert!(flipped, "some crops are mirrored");
    }
}
