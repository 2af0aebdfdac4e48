//! The networks of the paper, a small one for quick tests, a small Vision
//! Transformer, a small character-level GPT, and the user's own network
//! as a TorchScript file ([`Model::torchscript`]).
//!
//! A [`Model`] owns its parameters (a tch `VarStore`) and knows which of them
//! are quantizable: the weight tensors of convolutions and fully connected
//! layers (attention projections included), by name and [`TensorKind`] (the
//! kind sets the width of the gap fields of pruned positions, paper.md
//! section 6). Biases, batch-norm and
//! layer-norm parameters, class tokens and position embeddings stay float32.

mod alexnet;
mod char_gpt;
mod layers;
mod lenet;
mod resnet;
mod small;
mod torchscript;
mod transformer;
mod vit;

use std::fmt;
use std::path::{Path, PathBuf};

use tch::nn::{self, ModuleT};
use tch::{Device, Tensor};

pub use layers::{LayerOp, Tap};
pub use nq_catalog::Arch;
pub use nq_quant::size::TensorKind;

use crate::error::{bad_file, NnError, Result};

/// What a model is built for: image shape and number of classes (for a
/// language model: `[1, 1, context]` and the size of the vocabulary).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputSpec {
    /// Channels, height, width.
    pub image: [i64; 3],
    /// Number of classes (characters of the vocabulary).
    pub classes: i64,
}

/// A quantizable tensor: its name in the `VarStore` and its kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quantizable {
    /// Name in the `VarStore`, such as `conv1.weight`.
    pub name: String,
    /// Convolution or fully connected.
    pub kind: TensorKind,
}

/// A network with its parameters.
pub struct Model {
    arch: Arch,
    input: InputSpec,
    vs: nn::VarStore,
    net: Box<dyn ModuleT>,
    quantizable: Vec<Quantizable>,
    recorder: layers::Recorder,
    /// The module of a TorchScript model (`net` is a clone of it).
    script: Option<torchscript::ScriptNet>,
}

impl fmt::Debug for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Model")
            .field("arch", &self.arch)
            .field("input", &self.input)
            .field("quantizable", &self.quantizable)
            .finish_non_exhaustive()
    }
}

/// What an architecture's builder returns: the network and the builder of
/// its quantizable layers.
pub(crate) struct Built {
    pub net: Box<dyn ModuleT>,
    pub layers: layers::Layers,
}

impl Model {
    /// Builds `arch` for `input` on `device`, initialised from tch's global
    /// seed (call `tch::manual_seed` first for a repeatable model).
    pub fn new(arch: Arch, input: InputSpec, device: Device) -> Result<Self> {
        let vs = nn::VarStore::new(device);
        let built = build(arch, &vs.root(), input)?;
        let (recorder, quantizable) = built.layers.finish();
        Ok(Self {
            arch,
            input,
            vs,
            net: built.net,
            quantizable,
            recorder,
            script: None,
        })
    }

    /// Loads the user's TorchScript module `file` onto `device`, for data
    /// of `input`; its quantizable tensors are the parameters of at least 2
    /// dimensions whose module name (`fc1.weight`) `select` accepts. See
    /// [`torchscript`] for the names and what stays float; call
    /// [`Model::probe`] on real examples before use.
    pub fn torchscript(
        file: &Path,
        input: InputSpec,
        device: Device,
        select: &dyn Fn(&str) -> bool,
    ) -> Result<Self> {
        let vs = nn::VarStore::new(device);
        let (script, quantizable) = torchscript::ScriptNet::load(file, &vs, select)?;
        if quantizable.is_empty() {
            return Err(bad_file(
                file,
                "no parameter of at least 2 dimensions is selected for quantization",
            ));
        }
        Ok(Self {
            arch: Arch::Torchscript,
            input,
            vs,
            net: Box::new(script.clone()),
            quantizable,
            recorder: layers::Recorder::default(),
            script: Some(script),
        })
    }

    /// Checks that the network runs on `xs` (a few examples of the data)
    /// and returns `N x classes` logits: a TorchScript module is the
    /// user's, so this is checked before any work (built-in networks
    /// always do).
    pub fn probe(&self, xs: &Tensor) -> Result<()> {
        match &self.script {
            Some(script) => script.probe(&xs.to_device(self.device()), self.input.classes),
            None => Ok(()),
        }
    }

    /// Whether [`Model::forward_tapped`] sees the quantizable layers
    /// (built-in networks; a TorchScript module's layers are its own).
    pub fn records_taps(&self) -> bool {
        self.script.is_none()
    }

    /// The architecture.
    pub fn arch(&self) -> Arch {
        self.arch
    }

    /// What the model was built for.
    pub fn input(&self) -> InputSpec {
        self.input
    }

    /// Where the parameters live.
    pub fn device(&self) -> Device {
        self.vs.device()
    }

    /// Logits of a batch; `train` switches batch norm and dropout to
    /// training mode.
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.net.forward_t(xs, train)
    }

    /// Logits of a batch in evaluation mode, and the input and output of
    /// every quantizable layer in forward order (see [`Tap`]). Recording
    /// is per model: do not run other forward passes of the same model
    /// from other threads meanwhile.
    pub fn forward_tapped(&self, xs: &Tensor) -> (Tensor, Vec<Tap>) {
        self.recorder.recording(|| self.net.forward_t(xs, false))
    }

    /// The parameters (and buffers such as batch-norm statistics).
    pub fn var_store(&self) -> &nn::VarStore {
        &self.vs
    }

    /// The parameters, mutably (loading a checkpoint, freezing).
    pub fn var_store_mut(&mut self) -> &mut nn::VarStore {
        &mut self.vs
    }

    /// Trainable parameters by name, sorted by name.
    pub fn trainable(&self) -> Vec<(String, Tensor)> {
        let mut vars: Vec<(String, Tensor)> = self
            .vs
            .variables()
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        vars
    }

    /// The quantizable tensors, in forward order.
    pub fn quantizable(&self) -> &[Quantizable] {
        &self.quantizable
    }

    /// The parameter tensor `name` (shares storage with the model).
    pub fn tensor(&self, name: &str) -> Result<Tensor> {
        self.vs
            .variables()
            .remove(name)
            .ok_or_else(|| NnError::BadTensor {
                name: name.into(),
                reason: format!("no such parameter in {}", self.arch),
            })
    }

    /// Number of trainable parameters.
    pub fn parameter_count(&self) -> i64 {
        self.trainable().iter().map(|(_, t)| t.numel() as i64).sum()
    }

    /// Saves every variable as safetensors (write then rename); for a
    /// TorchScript model also the module, with its buffers, beside it
    /// ([`Model::module_file`]).
    pub fn save(&self, path: &Path) -> Result<()> {
        if let Some(script) = &self.script {
            let module = Self::module_file(path);
            let tmp = module.with_extension("tmp.pt");
            script.save(&tmp)?;
            std::fs::rename(&tmp, &module).map_err(|e| {
                bad_file(&module, format!("cannot move {} here: {e}", tmp.display()))
            })?;
        }
        // tch picks the format from the extension, so the temporary file
        // must end in .safetensors too
        let tmp = path.with_extension("tmp.safetensors");
        self.vs
            .save(&tmp)
            .map_err(|e| bad_file(&tmp, format!("cannot save the model: {e}")))?;
        std::fs::rename(&tmp, path)
            .map_err(|e| bad_file(path, format!("cannot move {} here: {e}", tmp.display())))
    }

    /// Where [`Model::save`] puts the module of a TorchScript model saved
    /// to `path`: the same name ending in `.pt`.
    pub fn module_file(path: &Path) -> PathBuf {
        path.with_extension("pt")
    }

    /// Loads every variable from a safetensors file saved by [`Model::save`]
    /// for the same architecture; a TorchScript model loads its module
    /// (parameters and buffers) from beside it.
    pub fn load(&mut self, path: &Path) -> Result<()> {
        if !path.exists() {
            return Err(bad_file(path, "no such checkpoint"));
        }
        if self.script.is_some() {
            let module = Self::module_file(path);
            let names: Vec<String> = self.quantizable.iter().map(|q| q.name.clone()).collect();
            let loaded = Self::torchscript(&module, self.input, self.device(), &|_| true)?;
            let quantizable = loaded
                .quantizable
                .into_iter()
                .filter(|q| names.contains(&q.name))
                .collect::<Vec<_>>();
            if quantizable.len() != names.len() {
                return Err(bad_file(&module, "not a checkpoint of this module"));
            }
            *self = Self {
                quantizable,
                ..loaded
            };
            return Ok(());
        }
        self.vs
            .load(path)
            .map_err(|e| bad_file(path, format!("not a {} checkpoint: {e}", self.arch)))
    }
}

/// Dispatches to the architecture's builder.
fn build(arch: Arch, root: &nn::Path, input: InputSpec) -> Result<Built> {
    if input.classes < 2 {
        return Err(NnError::InvalidSetting {
            name: "classes",
            reason: format!(
                "a classifier needs at least 2 classes, got {}",
                input.classes
            ),
        });
    }
    match arch {
        Arch::Lenet5 => lenet::lenet5(root, input),
        Arch::Lenet300100 => lenet::lenet_300_100(root, input),
        Arch::Resnet20 => resnet::resnet(root, input, 3),
        Arch::Resnet32 => resnet::resnet(root, input, 5),
        Arch::Resnet56 => resnet::resnet(root, input, 9),
        Arch::Alexnet => alexnet::alexnet(root, input),
        Arch::SmallConv => small::small_conv(root, input),
        Arch::Vit => vit::vit(root, input),
        Arch::CharGpt => char_gpt::char_gpt(root, input),
        Arch::Torchscript => Err(NnError::InvalidSetting {
            name: "arch",
            reason:
                "a torchscript network comes from its file: name it in a grid (`model.model_file`)"
                    .into(),
        }),
    }
}

#[cfg(test)]
mod tests;
