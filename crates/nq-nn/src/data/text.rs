//! A character-level text dataset: `train.txt` and `valid.txt` in one
//! directory (as `make setup` builds Shakespeare's works), read as bytes.
//!
//! The vocabulary is the distinct bytes of both files in increasing order;
//! each byte becomes its index. Example `i` of a part is the window of
//! [`CONTEXT`](nq_catalog::CONTEXT) characters starting at `i * CONTEXT`
//! (windows do not overlap; the last incomplete one is dropped), and its
//! labels are the same window shifted by one character: a batch is a pair
//! of int64 `N x CONTEXT` tensors. [`Source::image_shape`] is then `[1, 1,
//! CONTEXT]` and [`Source::classes`] the size of the vocabulary.

use std::path::Path;

use rand_chacha::ChaCha8Rng;
use tch::Tensor;

use super::{Source, Splits};
use crate::error::{bad_file, NnError, Result};

/// One part of a text as token windows.
#[derive(Debug)]
pub struct CharWindows {
    tokens: Vec<u8>,
    vocabulary: usize,
    context: usize,
}

impl CharWindows {
    /// Windows of `context` tokens over `tokens` (indices below
    /// `vocabulary`).
    pub fn new(tokens: Vec<u8>, vocabulary: usize, context: usize) -> Self {
        Self {
            tokens,
            vocabulary,
            context,
        }
    }

    /// Number of tokens the windows' labels cover.
    pub fn labelled_tokens(&self) -> usize {
        self.len() * self.context
    }
}

impl Source for CharWindows {
    fn len(&self) -> usize {
        // a window needs one more token for its last label
        self.tokens.len().saturating_sub(1) / self.context
    }

    fn classes(&self) -> i64 {
        self.vocabulary as i64
    }

    fn image_shape(&self) -> [i64; 3] {
        [1, 1, self.context as i64]
    }

    fn batch(
        &self,
        indices: &[usize],
        _augment: bool,
        _rng: &mut ChaCha8Rng,
    ) -> Result<(Tensor, Tensor)> {
        let t = self.context;
        let mut x = Vec::with_capacity(indices.len() * t);
        let mut y = Vec::with_capacity(indices.len() * t);
        for &i in indices {
            let start = i * t;
            let window =
                self.tokens
                    .get(start..start + t + 1)
                    .ok_or_else(|| NnError::BadTensor {
                        name: "batch".into(),
                        reason: format!("window {i} out of {}", self.len()),
                    })?;
            x.extend(window[..t].iter().map(|&c| i64::from(c)));
            y.extend(window[1..].iter().map(|&c| i64::from(c)));
        }
        let shape = [indices.len() as i64, t as i64];
        Ok((
            Tensor::from_slice(&x).view(shape),
            Tensor::from_slice(&y).view(shape),
        ))
    }
}

/// The vocabulary: the distinct bytes of `texts` in increasing order.
pub fn vocabulary(texts: &[&[u8]]) -> Vec<u8> {
    let mut seen = [false; 256];
    for text in texts {
        for &b in *text {
            seen[usize::from(b)] = true;
        }
    }
    (0..=255u8).filter(|&b| seen[usize::from(b)]).collect()
}

/// `text` as indices into `vocabulary` (which holds every byte of it).
fn encode(text: &[u8], vocabulary: &[u8]) -> Vec<u8> {
    let mut index = [0u8; 256];
    for (i, &b) in vocabulary.iter().enumerate() {
        index[usize::from(b)] = i as u8;
    }
    text.iter().map(|&b| index[usize::from(b)]).collect()
}

/// Loads `dir/train.txt` and `dir/valid.txt` as windows of `context`
/// characters; the validation text is the test part.
pub fn load_dir(name: &str, dir: &Path, context: usize) -> Result<Splits> {
    let read = |file: &str| -> Result<Vec<u8>> {
        let path = dir.join(file);
        let text =
            std::fs::read(&path).map_err(|e| bad_file(&path, format!("cannot read: {e}")))?;
        if text.len() <= context {
            return Err(bad_file(
                &path,
                format!(
                    "{} bytes, fewer than one window of {context} characters and its label",
                    text.len()
                ),
            ));
        }
        Ok(text)
    };
    let (train, valid) = (read("train.txt")?, read("valid.txt")?);
    let vocabulary = vocabulary(&[&train, &valid]);
    let part = |text: &[u8]| {
        Box::new(CharWindows::new(
            encode(text, &vocabulary),
            vocabulary.len(),
            context,
        )) as Box<dyn Source>
    };
    Ok(Splits {
        name: name.to_owned(),
        train: part(&train),
        test: part(&valid),
    })
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn windows_are_labelled_with_the_next_character() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("train.txt"), b"abcabcabca").unwrap();
        std::fs::write(dir.path().join("valid.txt"), b"cab d").unwrap();
        let s = load_dir("t", dir.path(), 3).unwrap();
        // vocabulary: ' ' a b c d
        assert_eq!((s.train.classes(), s.train.image_shape()), (5, [1, 1, 3]));
        // 10 characters: windows at 0, 3, 6 (the one at 6 takes its last label from 9)
        assert_eq!((s.train.len(), s.test.len()), (3, 1));
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let (x, y) = s.train.batch(&[2, 0], true, &mut rng).unwrap();
        assert_eq!(x.size(), [2, 3]);
        assert_eq!(
            Vec::<i64>::try_from(x.view(-1)).unwrap(),
            [1, 2, 3, 1, 2, 3]
        );
        assert_eq!(
            Vec::<i64>::try_from(y.view(-1)).unwrap(),
            [2, 3, 1, 2, 3, 1]
        );
        let (x, y) = s.test.batch(&[0], false, &mut rng).unwrap();
        assert_eq!(Vec::<i64>::try_from(x.view(-1)).unwrap(), [3, 1, 2]);
        assert_eq!(Vec::<i64>::try_from(y.view(-1)).unwrap(), [1, 2, 0]);
        assert!(s.train.batch(&[3], false, &mut rng).is_err());
    }

    #[test]
    fn a_missing_or_short_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let err = load_dir("t", dir.path(), 3).unwrap_err().to_string();
        assert!(err.contains("train.txt"), "{err}");
        std::fs::write(dir.path().join("train.txt"), b"abcabc").unwrap();
        std::fs::write(dir.path().join("valid.txt"), b"abc").unwrap();
        let err = load_dir("t", dir.path(), 3).unwrap_err().to_string();
        assert!(
            err.contains("valid.txt") && err.contains("fewer than one window"),
            "{err}"
        );
    }
}
