//! ImageNet (or any image classification set) as class folders:
//! `root/train/<class>/*.{jpeg,jpg,png}` and `root/val/<class>/*`, classes
//! numbered in sorted folder order. Images are decoded per batch, so the
//! set never has to fit in memory.
//!
//! Preprocessing as for AlexNet in torchvision: resize the shorter side to
//! 256, crop 224x224 (random crop and horizontal flip for training, centre
//! crop for test), scale to [0, 1], normalise per channel with ImageNet's
//! mean (0.485, 0.456, 0.406) and standard deviation (0.229, 0.224,
//! 0.225). Both sizes are parameters (227 for Caffe's AlexNet).

use std::path::{Path, PathBuf};

use image::imageops::FilterType;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use tch::Tensor;

use super::{Source, Splits};
use crate::error::{bad_file, NnError, Result};

/// One split of an image folder.
#[derive(Debug)]
pub struct ImageFolder {
    files: Vec<(PathBuf, i64)>,
    classes: i64,
    resize: u32,
    crop: u32,
}

fn is_image(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "jpeg" | "jpg" | "png"))
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| bad_file(dir, format!("cannot list: {e}")))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    out.sort();
    Ok(out)
}

impl ImageFolder {
    /// The images of `dir/<class>/`, for the class names `classes`.
    fn open(dir: &Path, classes: &[String], resize: u32, crop: u32) -> Result<Self> {
        let mut files = Vec::new();
        for (c, name) in classes.iter().enumerate() {
            let class_dir = dir.join(name);
            if !class_dir.is_dir() {
                return Err(bad_file(
                    &class_dir,
                    "missing class folder (train and val must have the same classes)",
                ));
            }
            let images: Vec<PathBuf> = sorted_entries(&class_dir)?
                .into_iter()
                .filter(|p| is_image(p))
                .collect();
            if images.is_empty() {
                return Err(bad_file(
                    &class_dir,
                    "no .jpeg, .jpg or .png image in this class folder",
                ));
            }
            files.extend(images.into_iter().map(|p| (p, c as i64)));
        }
        Ok(Self {
            files,
            classes: classes.len() as i64,
            resize,
            crop,
        })
    }

    /// Decodes, resizes, crops (and flips) one image into a normalised
    /// `3 x crop x crop` tensor.
    fn image(&self, path: &Path, augment: bool, rng: &mut ChaCha8Rng) -> Result<Tensor> {
        let img = image::open(path)
            .map_err(|e| bad_file(path, format!("cannot decode the image: {e}")))?
            .to_rgb8();
        let (w, h) = img.dimensions();
        let scale = self.resize as f64 / w.min(h) as f64;
        let (nw, nh) = (
            ((w as f64 * scale).round() as u32).max(self.crop),
            ((h as f64 * scale).round() as u32).max(self.crop),
        );
        let img = image::imageops::resize(&img, nw, nh, FilterType::Triangle);
        let (x0, y0) = if augment {
            (
                rng.random_range(0..=nw - self.crop),
                rng.random_range(0..=nh - self.crop),
            )
        } else {
            ((nw - self.crop) / 2, (nh - self.crop) / 2)
        };
        let mut img = image::imageops::crop_imm(&img, x0, y0, self.crop, self.crop).to_image();
        if augment && rng.random_bool(0.5) {
            image::imageops::flip_horizontal_in_place(&mut img);
        }
        let c = self.crop as i64;
        let hwc = Tensor::from_slice(img.as_raw())
            .view([c, c, 3])
            .to_kind(tch::Kind::Float)
            / 255.0;
        let input = nq_catalog::Dataset::Imagenet.input();
        let mean = super::per_channel(input.mean, &[3, 1, 1]);
        let std = super::per_channel(input.std, &[3, 1, 1]);
        Ok((hwc.permute([2, 0, 1]) - mean) / std)
    }
}

impl Source for ImageFolder {
    fn len(&self) -> usize {
        self.files.len()
    }

    fn classes(&self) -> i64 {
        self.classes
    }

    fn image_shape(&self) -> [i64; 3] {
        [3, self.crop as i64, self.crop as i64]
    }

    fn batch(
        &self,
        indices: &[usize],
        augment: bool,
        rng: &mut ChaCha8Rng,
    ) -> Result<(Tensor, Tensor)> {
        let mut images = Vec::with_capacity(indices.len());
        let mut labels = Vec::with_capacity(indices.len());
        for &i in indices {
            let (path, label) = self.files.get(i).ok_or_else(|| NnError::BadTensor {
                name: "batch".into(),
                reason: format!("example {i} out of {}", self.files.len()),
            })?;
            images.push(self.image(path, augment, rng)?);
            labels.push(*label);
        }
        Ok((Tensor::stack(&images, 0), Tensor::from_slice(&labels)))
    }
}

/// The image folders `dir/train` and `dir/val`; shorter side resized to
/// `resize`, crops of `crop` (256 and 224 for AlexNet).
pub fn load_dir(dir: &Path, resize: u32, crop: u32) -> Result<Splits> {
    if crop == 0 || resize < crop {
        return Err(NnError::InvalidSetting {
            name: "crop",
            reason: format!("need 0 < crop <= resize, got crop {crop}, resize {resize}"),
        });
    }
    let train_dir = dir.join("train");
    if !train_dir.is_dir() {
        return Err(bad_file(
            &train_dir,
            "missing: ImageNet is read as class folders root/train/<class>/*.JPEG and \
             root/val/<class>/*; point data_dir (grids) or --data-dir at root",
        ));
    }
    let classes: Vec<String> = sorted_entries(&train_dir)?
        .into_iter()
        .filter(|p| p.is_dir())
        .filter_map(|p| p.file_name().and_then(|n| n.to_str()).map(str::to_owned))
        .collect();
    if classes.len() < 2 {
        return Err(bad_file(
            &train_dir,
            format!("{} class folders, expected at least 2", classes.len()),
        ));
    }
    Ok(Splits {
        name: "imagenet".into(),
        train: Box::new(ImageFolder::open(&train_dir, &classes, resize, crop)?),
        test: Box::new(ImageFolder::open(&dir.join("val"), &classes, resize, crop)?),
    })
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    /// Two classes; class 1's images are red, class 0's blue; one JPEG.
    fn write_folders(root: &Path) {
        for split in ["train", "val"] {
            for (class, colour) in [("a_blue", [0u8, 0, 255]), ("b_red", [255, 0, 0])] {
                let dir = root.join(split).join(class);
                std::fs::create_dir_all(&dir).unwrap();
                let img = image::RgbImage::from_pixel(40, 30, image::Rgb(colour));
                img.save(dir.join("0.png")).unwrap();
                img.save(dir.join("1.JPEG")).unwrap();
                std::fs::write(dir.join("notes.txt"), "not an image").unwrap();
            }
        }
    }

    #[test]
    fn reads_class_folders_written_in_the_real_formats() {
        let dir = tempfile::tempdir().unwrap();
        write_folders(dir.path());
        let s = load_dir(dir.path(), 20, 16).unwrap();
        assert_eq!((s.train.len(), s.test.len(), s.train.classes()), (4, 4, 2));
        assert_eq!(s.train.image_shape(), [3, 16, 16]);
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let (x, y) = s.train.batch(&[0, 2, 3], true, &mut rng).unwrap();
        assert_eq!(x.size(), vec![3, 3, 16, 16]);
        assert_eq!(Vec::<i64>::try_from(&y).unwrap(), vec![0, 1, 1]);
        // a red PNG: red channel (1 - 0.485) / 0.229, blue (0 - 0.406) / 0.225
        let (x, _) = s.test.batch(&[2], false, &mut rng).unwrap();
        assert!((x.double_value(&[0, 0, 8, 8]) - (1.0 - 0.485) / 0.229).abs() < 1e-4);
        assert!((x.double_value(&[0, 2, 8, 8]) + 0.406 / 0.225).abs() < 1e-4);
    }

    #[test]
    fn missing_and_broken_data_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let err = load_dir(dir.path(), 256, 224).unwrap_err().to_string();
        assert!(err.contains("train") && err.contains("data_dir"), "{err}");
        write_folders(dir.path());
        std::fs::remove_dir_all(dir.path().join("val/b_red")).unwrap();
        let err = load_dir(dir.path(), 20, 16).unwrap_err().to_string();
        assert!(err.contains("val/b_red"), "{err}");
        write_folders(dir.path());
        let broken = dir.path().join("train/a_blue/0.png");
        std::fs::write(&broken, b"\x89PNG broken").unwrap();
        let s = load_dir(dir.path(), 20, 16).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let err = s
            .train
            .batch(&[0], false, &mut rng)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("a_blue/0.png") && err.contains("decode"),
            "{err}"
        );
    }
}
