//! IDX files (LeCun's MNIST format, also Fashion-MNIST's), gzipped or not.
//!
//! An IDX file is a big-endian header, magic `00 00 08 D` (type 08 =
//! unsigned byte, `D` dimensions), then `D` sizes as u32, then the bytes.
//! Images are `N x 28 x 28` (magic 0x00000803), labels `N` (0x00000801).
//! <http://yann.lecun.com/exdb/mnist/>, <https://github.com/zalandoresearch/fashion-mnist>.

use std::io::Read;
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;
use tch::{Kind, Tensor};

use super::{InMemory, Splits};
use crate::error::{bad_file, Result};

/// Reads a whole file, gunzipping it when it starts with the gzip magic.
fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|e| bad_file(path, format!("cannot read: {e}")))?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| bad_file(path, format!("corrupt gzip data: {e}")))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// The sizes and the data of an IDX file of unsigned bytes with `dims`
/// dimensions.
fn read_idx(path: &Path, dims: u8) -> Result<(Vec<usize>, Vec<u8>)> {
    let bytes = read_maybe_gz(path)?;
    let header = 4 + 4 * usize::from(dims);
    if bytes.len() < header {
        return Err(bad_file(
            path,
            format!("{} bytes, shorter than an IDX header", bytes.len()),
        ));
    }
    let magic = [0, 0, 8, dims];
    if bytes[..4] != magic {
        return Err(bad_file(
            path,
            format!(
                "magic number {:02x?}, expected {magic:02x?} (IDX, unsigned bytes, {dims} dimensions)",
                &bytes[..4]
            ),
        ));
    }
    let sizes: Vec<usize> = (0..usize::from(dims))
        .map(|d| {
            let at = 4 + 4 * d;
            u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]) as usize
        })
        .collect();
    let expected = sizes.iter().product::<usize>();
    if bytes.len() - header != expected {
        return Err(bad_file(
            path,
            format!(
                "sizes {sizes:?} need {expected} data bytes, the file has {}",
                bytes.len() - header
            ),
        ));
    }
    Ok((sizes, bytes[header..].to_vec()))
}

/// The first of `name` and `name.gz` that exists in `dir`.
fn find(dir: &Path, name: &str) -> Result<PathBuf> {
    [dir.join(name), dir.join(format!("{name}.gz"))]
        .into_iter()
        .find(|p| p.is_file())
        .ok_or_else(|| {
            bad_file(
                dir,
                format!("no {name} or {name}.gz here (expected the four IDX files of MNIST or Fashion-MNIST)"),
            )
        })
}

/// Images scaled to [0, 1] then normalised by `(x - mean) / std`, as
/// `N x 1 x H x W` float32, with their int64 labels.
pub fn read_split(images: &Path, labels: &Path, mean: f64, std: f64) -> Result<InMemory> {
    let (isz, pixels) = read_idx(images, 3)?;
    let (lsz, classes) = read_idx(labels, 1)?;
    if isz[0] != lsz[0] {
        return Err(bad_file(
            labels,
            format!(
                "{} labels for {} images in {}",
                lsz[0],
                isz[0],
                images.display()
            ),
        ));
    }
    if let Some(bad) = classes.iter().find(|&&c| c >= 10) {
        return Err(bad_file(labels, format!("label {bad}, expected 0..9")));
    }
    let shape = [isz[0] as i64, 1, isz[1] as i64, isz[2] as i64];
    let x = Tensor::from_slice(&pixels).to_kind(Kind::Float).view(shape) / 255.0;
    let x = (x - mean) / std;
    let y = Tensor::from_slice(&classes).to_kind(Kind::Int64);
    InMemory::new(x, y, 10)
}

/// The four IDX files of `dir` (gzipped or not) as training and test sets,
/// normalised with `mean` and `std` of the training pixels.
pub fn load_dir(name: &str, dir: &Path, mean: f64, std: f64) -> Result<Splits> {
    if !dir.is_dir() {
        return Err(bad_file(dir, format!("{name}: no such directory")));
    }
    let train = read_split(
        &find(dir, "train-images-idx3-ubyte")?,
        &find(dir, "train-labels-idx1-ubyte")?,
        mean,
        std,
    )?;
    let test = read_split(
        &find(dir, "t10k-images-idx3-ubyte")?,
        &find(dir, "t10k-labels-idx1-ubyte")?,
        mean,
        std,
    )?;
    Ok(Splits {
        name: name.to_owned(),
        train: Box::new(train),
        test: Box::new(test),
    })
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::write::GzEncoder;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;

    fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut out = vec![0, 0, 8, dims.len() as u8];
        for d in dims {
            out.extend_from_slice(&d.to_be_bytes());
        }
        out.extend_from_slice(data);
        out
    }

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    /// Two 2x2 training images and one test image, gzipped or not.
    fn write_dir(dir: &Path, zipped: bool) {
        let files = [
            (
                "train-images-idx3-ubyte",
                idx(&[2, 2, 2], &[0, 255, 51, 102, 0, 0, 0, 255]),
            ),
            ("train-labels-idx1-ubyte", idx(&[2], &[3, 9])),
            ("t10k-images-idx3-ubyte", idx(&[1, 2, 2], &[255, 255, 0, 0])),
            ("t10k-labels-idx1-ubyte", idx(&[1], &[0])),
        ];
        for (name, bytes) in files {
            if zipped {
                std::fs::write(dir.join(format!("{name}.gz")), gz(&bytes)).unwrap();
            } else {
                std::fs::write(dir.join(name), bytes).unwrap();
            }
        }
    }

    #[test]
    fn reads_plain_and_gzipped_files_by_hand() {
        for zipped in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            write_dir(dir.path(), zipped);
            let s = load_dir("t", dir.path(), 0.5, 0.25).unwrap();
            assert_eq!((s.train.len(), s.test.len()), (2, 1));
            assert_eq!(s.train.image_shape(), [1, 2, 2]);
            let mut rng = ChaCha8Rng::seed_from_u64(0);
            let (x, y) = s.train.batch(&[0, 1], false, &mut rng).unwrap();
            assert_eq!(Vec::<i64>::try_from(&y).unwrap(), vec![3, 9]);
            // (51 / 255 - 0.5) / 0.25 = -1.2
            assert!((x.double_value(&[0, 0, 1, 0]) + 1.2).abs() < 1e-6);
            assert!((x.double_value(&[0, 0, 0, 1]) - 2.0).abs() < 1e-6);
        }
    }

    #[test]
    fn malformed_files_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        write_dir(dir.path(), false);
        let images = dir.path().join("train-images-idx3-ubyte");
        let mut bytes = std::fs::read(&images).unwrap();
        bytes[3] = 1;
        std::fs::write(&images, &bytes).unwrap();
        let err = load_dir("t", dir.path(), 0.0, 1.0).unwrap_err().to_string();
        assert!(
            err.contains("train-images-idx3-ubyte") && err.contains("magic"),
            "{err}"
        );

        write_dir(dir.path(), false);
        let labels = dir.path().join("t10k-labels-idx1-ubyte");
        std::fs::write(&labels, idx(&[2], &[1])).unwrap();
        let err = load_dir("t", dir.path(), 0.0, 1.0).unwrap_err().to_string();
        assert!(
            err.contains("t10k-labels") && err.contains("need 2 data bytes"),
            "{err}"
        );

        std::fs::write(&labels, &gz(&idx(&[1], &[1]))[..10]).unwrap();
        let err = load_dir("t", dir.path(), 0.0, 1.0).unwrap_err().to_string();
        assert!(err.contains("t10k-labels"), "{err}");

        std::fs::remove_file(&labels).unwrap();
        let err = load_dir("t", dir.path(), 0.0, 1.0).unwrap_err().to_string();
        assert!(err.contains("t10k-labels-idx1-ubyte.gz"), "{err}");
        let err = load_dir("t", &dir.path().join("nope"), 0.0, 1.0)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("nope") && err.contains("no such directory"),
            "{err}"
        );
    }

    #[test]
    fn labels_must_match_images() {
        let dir = tempfile::tempdir().unwrap();
        write_dir(dir.path(), false);
        std::fs::write(dir.path().join("train-labels-idx1-ubyte"), idx(&[1], &[1])).unwrap();
        let err = load_dir("t", dir.path(), 0.0, 1.0).unwrap_err().to_string();
        assert!(err.contains("1 labels for 2 images"), "{err}");
    }
}
