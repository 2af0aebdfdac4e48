//! Dither, quantize uniformly, record the dither.

use rayon::prelude::*;

use super::hyperparams::UniversalParams;
use crate::dither::Dither;
use crate::error::{ensure_param, Result};
use crate::input::validate;
use crate::quantization::Quantization;
use crate::uniform::{uniform, uniform_step, CellWidth, UniformParams};

/// Universal quantization of `w` with importance `h` (see the
/// [module documentation](super)): the step `delta` (given, or uniform's
/// for `k` cells), the dither `u_i` of `(seed, delta)`, uniform
/// quantization of `w_i + u_i` with cells of width `delta`, and the
/// dither kept in the result, so that
/// [`Quantization::quantized`] gives `c_{a(i)} - u_i`.
///
/// Cost: one pass to draw the dither, then uniform's two passes.
pub fn universal(w: &[f32], h: &[f32], params: &UniversalParams) -> Result<Quantization> {
    validate(w, h)?;
    params.validate()?;
    let delta = uniform_step(w, &params.width)?;
    // the file keeps the step as f32, and the cells must be the dither's
    let step = delta as f32;
    ensure_param(
        step.is_finite() && step > 0.0,
        "delta",
        format!("delta = {delta} is outside float32's range"),
    )?;
    let dither = Dither {
        seed: params.seed,
        step,
    };
    let dithered: Vec<f32> = w
        .par_iter()
        .enumerate()
        .map(|(i, &x)| x + dither.at(i as u64))
        .collect();
    let mut q = uniform(
        &dithered,
        h,
        &UniformParams {
            width: CellWidth::Step(f64::from(step)),
            centre: params.centre,
        },
    )?;
    q.dither = Some(dither);
    Ok(q)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::uniform::UniformCentre;

    #[test]
    fn small_example_by_hand() {
        let w = [0.0f32, 0.4, 1.0, -0.7];
        let h = [1.0f32; 4];
        let q = universal(&w, &h, &UniversalParams::step(1.0, 3)).unwrap();
        let d = Dither { seed: 3, step: 1.0 };
        // each weight goes to the nearest integer of w + u; the centres are
        // those integers in increasing order
        let cells: Vec<f32> = (0..4)
            .map(|i| (w[i] + d.at(i as u64) + 0.5).floor())
            .collect();
        let mut centres = cells.clone();
        centres.sort_by(f32::total_cmp);
        centres.dedup();
        assert_eq!(q.centres, centres);
        for (&a, &cell) in q.assignment.iter().zip(&cells) {
            assert_eq!(q.centres[a as usize], cell);
        }
        assert_eq!(q.dither, Some(d));
        let expected: Vec<f32> = (0..4).map(|i| cells[i] - d.at(i as u64)).collect();
        assert_eq!(q.quantized(), expected);
    }

    #[test]
    fn the_error_is_uniform_and_forgets_the_weight() {
        // all weights equal: plain uniform quantization makes every error
        // the same 0.3 delta; the dithered error spreads uniformly over
        // [-delta/2, delta/2] around 0
        let delta = 0.5f32;
        let w = vec![1.3 * delta; 200_000];
        let h = vec![1.0; w.len()];
        let q = universal(&w, &h, &UniversalParams::step(f64::from(delta), 11)).unwrap();
        let e: Vec<f64> = w
            .iter()
            .zip(q.quantized())
            .map(|(&x, y)| f64::from(x) - f64::from(y))
            .collect();
        let n = e.len() as f64;
        let mean = e.iter().sum::<f64>() / n;
        let var = e.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        let uniform_var = f64::from(delta).powi(2) / 12.0;
        assert!(mean.abs() < 5.0 * (uniform_var / n).sqrt(), "mean {mean}");
        assert!((var / uniform_var - 1.0).abs() < 0.02, "variance {var}");
        let plain = uniform(&w, &h, &UniformParams::step(f64::from(delta))).unwrap();
        assert_eq!(plain.clusters(), 1);
        assert_eq!(q.clusters(), 2, "1.3 delta + u lies in cell 1 or 2");
    }

    #[test]
    fn a_fixed_seed_repeats_and_another_seed_differs() {
        let w: Vec<f32> = (0..5000)
            .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
            .collect();
        let h = vec![1.0; w.len()];
        let a = universal(&w, &h, &UniversalParams::cells(16, 42)).unwrap();
        let b = universal(&w, &h, &UniversalParams::cells(16, 42)).unwrap();
        let c = universal(&w, &h, &UniversalParams::cells(16, 43)).unwrap();
        assert_eq!(a, b);
        assert_ne!(a.assignment, c.assignment);
    }

    #[test]
    fn rejects_bad_input_and_steps_float32_cannot_hold() {
        let h = [1.0f32; 2];
        assert!(universal(&[0.0, f32::NAN], &h, &UniversalParams::step(1.0, 0)).is_err());
        assert!(universal(&[0.0, 1.0], &h, &UniversalParams::step(0.0, 0)).is_err());
        assert!(universal(&[0.0, 1.0], &h, &UniversalParams::step(1e-300, 0)).is_err());
        assert!(universal(&[0.0, 1.0], &h, &UniversalParams::step(1e300, 0)).is_err());
    }

    proptest! {
        #[test]
        fn midpoint_errors_stay_within_half_a_step(
            w in prop::collection::vec(-4.0f32..4.0, 1..300),
            k in 2usize..40,
            seed in any::<u64>(),
        ) {
            let h = vec![1.0; w.len()];
            let q = universal(&w, &h, &UniversalParams::cells(k, seed)).unwrap();
            let step = q.dither.unwrap().step;
            prop_assert!(q.clusters() <= k + 2);
            for (x, y) in w.iter().zip(q.quantized()) {
                // half a step, plus the roundings of w + u and c - u
                prop_assert!((x - y).abs() <= step / 2.0 + 4.0 * f32::EPSILON * (x.abs() + step));
            }
        }

        #[test]
        fn weighted_mean_centres_never_add_distortion(
            w in prop::collection::vec(-4.0f32..4.0, 1..300),
            seed in any::<u64>(),
        ) {
            let h: Vec<f32> = (0..w.len()).map(|i| 0.1 + (i % 7) as f32).collect();
            let with = |centre| {
                let p = UniversalParams { centre, ..UniversalParams::cells(8, seed) };
                crate::quantization::distortions(&w, &h, &universal(&w, &h, &p).unwrap()).0
            };
            prop_assert!(with(UniformCentre::WeightedMean) <= with(UniformCentre::Midpoint) * (1.0 + 1e-5) + 1e-9);
        }
    }
}
