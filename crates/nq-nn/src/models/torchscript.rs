//! The user's own network: a TorchScript module saved by PyTorch with
//! `torch.jit.script(net).save("net.pt")` (or `torch.jit.trace`), trained
//! and evaluated through tch's `TrainableCModule`.
//!
//! Its parameters join the model's `VarStore` under their module names
//! with `.` replaced by `_` (`fc1.weight` becomes `fc1_weight`), sharing
//! storage with the module, so that training, pruning, quantization and
//! fine-tuning change what the module computes. The quantizable tensors
//! are the parameters of at least 2 dimensions that the grid's selection
//! accepts (a 4-dimensional one counts as a convolution, the others as
//! fully connected); the rest (biases, norms) stay float32. Buffers such
//! as batch-norm statistics live in the module only: a checkpoint of such a
//! model is the module itself, saved beside the parameters
//! ([`super::Model::save`]).
//!
//! The module must take one float32 batch as stored in the data and return
//! logits `N x classes`; [`ScriptNet::probe`] checks that on real examples
//! before any work.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Tensor, TrainableCModule};

use super::{Quantizable, TensorKind};
use crate::error::{bad_file, Result};

/// The module and the mode it was last switched to (switching costs a walk
/// over its submodules, so it is done only on a change).
#[derive(Debug)]
struct Scripted {
    module: TrainableCModule,
    train: Option<bool>,
}

/// A TorchScript module as a [`ModuleT`]; clones share the module.
#[derive(Debug, Clone)]
pub(crate) struct ScriptNet {
    scripted: Arc<Mutex<Scripted>>,
    file: PathBuf,
}

impl ScriptNet {
    /// Loads `file` onto `vs`'s device and adds its parameters to `vs`;
    /// returns the network and the quantizable parameters (those of at
    /// least 2 dimensions whose module name `select` accepts), in the
    /// module's order.
    pub(crate) fn load(
        file: &Path,
        vs: &nn::VarStore,
        select: &dyn Fn(&str) -> bool,
    ) -> Result<(Self, Vec<Quantizable>)> {
        if !file.is_file() {
            return Err(bad_file(file, "no such TorchScript file"));
        }
        let module = TrainableCModule::load(file, vs.root()).map_err(|e| {
            bad_file(
                file,
                format!(
                    "not a TorchScript module (save one with torch.jit.script(net).save(...)): {}",
                    first_line(&e.to_string())
                ),
            )
        })?;
        let quantizable = tch::CModule::load_on_device(file, Device::Cpu)
            .and_then(|m| m.named_parameters())
            .map_err(|e| bad_file(file, first_line(&e.to_string())))?
            .into_iter()
            .filter(|(name, t)| t.dim() >= 2 && select(name))
            .map(|(name, t)| Quantizable {
                name: name.replace('.', "_"),
                kind: if t.dim() == 4 {
                    TensorKind::Conv
                } else {
                    TensorKind::Linear
                },
            })
            .collect();
        let net = Self {
            scripted: Arc::new(Mutex::new(Scripted {
                module,
                train: None,
            })),
            file: file.to_owned(),
        };
        Ok((net, quantizable))
    }

    /// The module's output on `xs`, or the module's own error.
    fn try_forward(&self, xs: &Tensor, train: bool) -> std::result::Result<Tensor, tch::TchError> {
        let mut s = self.scripted.lock().unwrap_or_else(|e| e.into_inner());
        if s.train != Some(train) {
            if train {
                s.module.f_set_train()?;
            } else {
                s.module.f_set_eval()?;
            }
            s.train = Some(train);
        }
        s.module.forward_ts(&[xs])
    }

    /// Checks on `xs` (a few real examples) that the module runs and
    /// returns float logits `N x classes`.
    pub(crate) fn probe(&self, xs: &Tensor, classes: i64) -> Result<()> {
        let out = tch::no_grad(|| self.try_forward(xs, false)).map_err(|e| {
            bad_file(
                &self.file,
                format!(
                    "the module fails on a batch of shape {:?} from the data: {}",
                    xs.size(),
                    first_line(&e.to_string())
                ),
            )
        })?;
        let expected = [xs.size()[0], classes];
        if out.size() != expected || !matches!(out.kind(), Kind::Float | Kind::Double) {
            return Err(bad_file(
                &self.file,
                format!(
                    "the module returns {:?} {:?} for a batch of shape {:?}; expected float \
                     logits {expected:?} (examples x classes)",
                    out.kind(),
                    out.size(),
                    xs.size()
                ),
            ));
        }
        Ok(())
    }

    /// Saves the module (parameters and buffers) to `path`.
    pub(crate) fn save(&self, path: &Path) -> Result<()> {
        let s = self.scripted.lock().unwrap_or_else(|e| e.into_inner());
        s.module
            .save(path)
            .map_err(|e| bad_file(path, format!("cannot save the module: {e}")))
    }
}

impl ModuleT for ScriptNet {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        // `probe` ran the module on the data's batches before any stage
        // calls this, so a failure here is a defect of the module itself
        self.try_forward(xs, train).unwrap_or_else(|e| {
            panic!(
                "TorchScript module {} failed: {}",
                self.file.display(),
                first_line(&e.to_string())
            )
        })
    }
}

/// libtorch's messages carry a C++ backtrace after their first lines.
fn first_line(message: &str) -> String {
    message
        .lines()
        .take_while(|l| !l.contains("Exception raised from"))
        .collect::<Vec<_>>()
        .join(" ")
}
