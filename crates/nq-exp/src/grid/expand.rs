//! The `[grid]` axes, checked, and their expansion into cells.
//!
//! Order (fixed, so that cell indices and ids are stable): seed, prune,
//! method, then for quantizing methods weighting, scope, the method's own
//! parameter (`k`, or `lambda` for ECSQ and soft-sharing), coding,
//! finetune, rounding, quantizer seed. Axes that do not apply to a method do
//! not multiply its cells:
//! `method = "none"` gives one cell per seed and pruning, and soft-sharing
//! (one mixture over all layers, no importance) takes only the weighting
//! `none` and the scope `global`.

use std::collections::{BTreeMap, HashSet};

use nq_quant::huffman::Coding;
use nq_quant::scope::Scope;

use super::convert::{Context, QuantizerSettings};
use super::raw::RawAxes;
use super::spec::{
    CellSpec, CompensationSpec, FinetuneSpec, ImportanceSpec, MethodSpec, PruneSpec, SearchGroup,
    SearchSettings, COMPENSATED_ROUNDINGS, MAX_K,
};
use super::GridError;
use crate::search::SearchSpace;

const METHODS: [&str; 7] = [
    "none",
    "kmeans",
    "kmeans-optimal",
    "uniform",
    "ecsq",
    "universal",
    "soft-sharing",
];

/// The methods whose parameter is `k`.
const K_METHODS: [&str; 4] = ["kmeans", "kmeans-optimal", "uniform", "universal"];

/// The methods whose codebooks compensated rounding can round onto.
const ROUNDED_METHODS: [&str; 4] = ["kmeans", "kmeans-optimal", "uniform", "ecsq"];

/// The methods whose parameter is `lambda` (soft-sharing's is its `tau`).
const LAMBDA_METHODS: [&str; 2] = ["ecsq", "soft-sharing"];

/// The checked axes.
pub struct Axes {
    seed: Vec<u64>,
    prune: Vec<String>,
    method: Vec<String>,
    weighting: Vec<String>,
    scope: Vec<Scope>,
    k: Vec<usize>,
    lambda: Vec<f64>,
    coding: Vec<Coding>,
    finetune: Vec<bool>,
    /// `grid.rounding`.
    roundings: Vec<Rounding>,
    /// The quantizer seeds of the methods that draw; `[None]` (the training
    /// seed) without the axis.
    quantizer_seed: Vec<Option<u64>>,
}

fn no_duplicates<T: std::fmt::Debug>(
    ctx: &Context<'_>,
    key: &str,
    values: &[T],
    id: impl Fn(&T) -> String,
) -> Result<(), GridError> {
    let mut seen = HashSet::new();
    for v in values {
        ctx.ensure(seen.insert(id(v)), key, || format!("{v:?} is listed twice"))?;
    }
    ctx.ensure(!values.is_empty(), key, || {
        "expected at least one value".into()
    })
}

impl Axes {
    /// Checks every axis against the named settings and the methods.
    pub fn check(
        ctx: &Context<'_>,
        raw: RawAxes,
        prunes: &BTreeMap<String, PruneSpec>,
        importances: &BTreeMap<String, ImportanceSpec>,
        has_finetune: bool,
        search: Option<&SearchSettings>,
    ) -> Result<Self, GridError> {
        let owned =
            |v: Option<Vec<String>>, default: &str| v.unwrap_or_else(|| vec![default.to_owned()]);
        let prune = owned(raw.prune, "none");
        let weighting = owned(raw.weighting, "none");
        let scope_names = owned(raw.scope, "layer");
        let coding_names = owned(raw.coding, "huffman");
        let finetune = raw.finetune.unwrap_or_else(|| vec![false]);
        let rounding = owned(raw.rounding, "nearest");
        no_duplicates(ctx, "grid.seed", &raw.seed, |v| v.to_string())?;
        no_duplicates(ctx, "grid.method", &raw.method, Clone::clone)?;
        no_duplicates(ctx, "grid.prune", &prune, Clone::clone)?;
        no_duplicates(ctx, "grid.weighting", &weighting, Clone::clone)?;
        no_duplicates(ctx, "grid.scope", &scope_names, Clone::clone)?;
        no_duplicates(ctx, "grid.coding", &coding_names, Clone::clone)?;
        no_duplicates(ctx, "grid.finetune", &finetune, |v| v.to_string())?;
        no_duplicates(ctx, "grid.rounding", &rounding, Clone::clone)?;
        let quantizer_seed = match raw.quantizer_seed {
            None => vec![None],
            Some(seeds) => {
                no_duplicates(ctx, "grid.quantizer_seed", &seeds, |v| v.to_string())?;
                ctx.ensure(search.is_none(), "grid.quantizer_seed", || {
                    "not with [search], whose points are judged by their mean over grid.seed: \
                     drop one of the two"
                        .into()
                })?;
                seeds.into_iter().map(Some).collect()
            }
        };
        for r in &rounding {
            ctx.one_of("grid.rounding", r, &Rounding::names())?;
        }
        for m in &raw.method {
            ctx.ensure(METHODS.contains(&m.as_str()), "grid.method", || {
                format!("`{m}` is not one of {}", METHODS.join(", "))
            })?;
        }
        for p in &prune {
            ctx.ensure(p == "none" || prunes.contains_key(p), "grid.prune", || {
                format!("`{p}` is neither \"none\" nor a [prune.{p}] table")
            })?;
        }
        for w in &weighting {
            ctx.ensure(
                w == "none" || importances.contains_key(w),
                "grid.weighting",
                || format!("`{w}` is neither \"none\" nor an [importance.{w}] table"),
            )?;
        }
        let scope = scope_names
            .iter()
            .map(|s| {
                s.parse()
                    .map_err(|e: nq_quant::QuantError| ctx.error("grid.scope", e.to_string()))
            })
            .collect::<Result<Vec<Scope>, _>>()?;
        let coding = coding_names
            .iter()
            .map(|s| {
                s.parse()
                    .map_err(|e: nq_quant::QuantError| ctx.error("grid.coding", e.to_string()))
            })
            .collect::<Result<Vec<Coding>, _>>()?;
        ctx.ensure(
            !finetune.contains(&true) || has_finetune,
            "grid.finetune",
            || "true needs a [finetune] table".into(),
        )?;

        let takes_k = raw.method.iter().any(|m| K_METHODS.contains(&m.as_str()));
        let takes_lambda = raw
            .method
            .iter()
            .any(|m| LAMBDA_METHODS.contains(&m.as_str()));
        let k_searched = search.is_some_and(|s| s.k.is_some());
        let lambda_searched = search.is_some_and(|s| s.lambda.is_some());
        if let Some(s) = search {
            ctx.ensure(s.k.is_none() || takes_k, "search.k", || {
                "no method in grid.method takes k".into()
            })?;
            ctx.ensure(s.lambda.is_none() || takes_lambda, "search.lambda", || {
                "no method in grid.method takes lambda".into()
            })?;
            if let Some(reference) = &s.reference {
                ctx.ensure(prune.contains(reference), "search.reference", || {
                    format!(
                        "`{reference}` is not in grid.prune ({}): the reference network must \
                         be one of the grid's",
                        prune.join(", ")
                    )
                })?;
            }
            let has_reference = raw.method.iter().any(|m| m == "none");
            ctx.ensure(has_reference || !s.goal.needs_reference(), "grid.method", || {
                "[search] measures each point against the network unquantized: add \"none\" to grid.method"
                    .into()
            })?;
            ctx.ensure(!(k_searched && raw.k.is_some()), "grid.k", || {
                "k is searched ([search] k): drop the grid.k list".into()
            })?;
            ctx.ensure(
                !(lambda_searched && raw.lambda.is_some()),
                "grid.lambda",
                || "lambda is searched ([search] lambda): drop the grid.lambda list".into(),
            )?;
        }
        let uses_k = takes_k && !k_searched;
        let uses_lambda = takes_lambda && !lambda_searched;
        let k = match (raw.k, uses_k) {
            (Some(k), true) => k,
            (None, true) => {
                return Err(ctx.error(
                    "grid.method",
                    "kmeans, kmeans-optimal, uniform and universal need a grid.k list",
                ))
            }
            (Some(_), false) if !k_searched => {
                return Err(ctx.error("grid.k", "no method in grid.method takes k"))
            }
            (_, false) => Vec::new(),
        };
        let lambda = match (raw.lambda, uses_lambda) {
            (Some(l), true) => l,
            (None, true) => {
                return Err(ctx.error(
                    "grid.method",
                    "ecsq and soft-sharing need a grid.lambda list",
                ))
            }
            (Some(_), false) if !lambda_searched => {
                return Err(ctx.error("grid.lambda", "no method in grid.method takes lambda"))
            }
            (_, false) => Vec::new(),
        };
        if uses_k {
            no_duplicates(ctx, "grid.k", &k, |v| v.to_string())?;
            for &v in &k {
                ctx.ensure((1..=MAX_K).contains(&v), "grid.k", || {
                    format!("expected 1 <= k <= {MAX_K}, got {v}")
                })?;
            }
        }
        if uses_lambda {
            no_duplicates(ctx, "grid.lambda", &lambda, |v| v.to_string())?;
            for &v in &lambda {
                ctx.ensure(v.is_finite() && v >= 0.0, "grid.lambda", || {
                    format!("expected lambda >= 0, got {v}")
                })?;
            }
        }
        Ok(Self {
            seed: raw.seed,
            prune,
            method: raw.method,
            weighting,
            scope,
            k,
            lambda,
            coding,
            finetune,
            roundings: rounding.iter().filter_map(|r| Rounding::parse(r)).collect(),
            quantizer_seed,
        })
    }

    /// Whether `grid.quantizer_seed` was given.
    pub fn has_quantizer_seeds(&self) -> bool {
        self.quantizer_seed != [None]
    }

    /// Whether some cell rounds with compensation.
    pub fn compensates(&self) -> bool {
        self.roundings.iter().any(|&r| r != Rounding::Nearest)
    }
}

/// A value of `grid.rounding`: each weight to its nearest centre, or
/// compensated (`nq_quant::compensation`) in the weights' own order or in
/// act-order, through moments of the unquantized network or sequentially.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rounding {
    Nearest,
    Compensated { act_order: bool, sequential: bool },
}

impl Rounding {
    /// Every `grid.rounding` value.
    fn names() -> Vec<&'static str> {
        std::iter::once("nearest")
            .chain(COMPENSATED_ROUNDINGS)
            .collect()
    }

    fn parse(name: &str) -> Option<Self> {
        if name == "nearest" {
            return Some(Rounding::Nearest);
        }
        let i = COMPENSATED_ROUNDINGS.iter().position(|n| *n == name)?;
        Some(Rounding::Compensated {
            sequential: i >= 2,
            act_order: i % 2 == 1,
        })
    }

    /// A cell's compensation with the grid's `[compensation]` settings.
    fn spec(self, settings: &QuantizerSettings) -> Option<CompensationSpec> {
        match self {
            Rounding::Nearest => None,
            Rounding::Compensated {
                act_order,
                sequential,
            } => Some(CompensationSpec {
                act_order,
                sequential,
                ..settings.compensation
            }),
        }
    }
}

/// The roundings of `method`'s cells: compensated rounding needs a
/// codebook that the values are rounded onto, which universal quantization
/// (dithered values) and soft-sharing (its own retraining) do not leave.
fn roundings<'a>(method: &str, axes: &'a Axes) -> &'a [Rounding] {
    if ROUNDED_METHODS.contains(&method) {
        &axes.roundings
    } else {
        &[Rounding::Nearest]
    }
}

/// The quantizer seeds of `spec`'s cells: only a quantizer that draws
/// (k-means from k-means++ centres, universal quantization's dither) is
/// run once per seed.
fn quantizer_seeds<'a>(spec: &MethodSpec, axes: &'a Axes) -> &'a [Option<u64>] {
    let draws = match spec {
        MethodSpec::Kmeans { init, .. } => {
            init.parse::<nq_quant::kmeans::KmeansInit>()
                == Ok(nq_quant::kmeans::KmeansInit::PlusPlus)
        }
        MethodSpec::Universal { .. } => true,
        _ => false,
    };
    if draws {
        &axes.quantizer_seed
    } else {
        &[None]
    }
}

/// `method` with its own parameter (`k`, or `lambda` for ECSQ and
/// soft-sharing) at `value`.
fn method_at(method: &str, value: f64, q: &QuantizerSettings) -> MethodSpec {
    let k = value as usize;
    match method {
        "kmeans" => MethodSpec::Kmeans {
            k,
            init: q.kmeans_init.clone(),
            max_iter: q.kmeans_max_iter,
        },
        "kmeans-optimal" => MethodSpec::KmeansOptimal { k },
        "uniform" => MethodSpec::Uniform {
            k,
            centre: q.uniform_centre.clone(),
        },
        "ecsq" => MethodSpec::Ecsq {
            lambda: value,
            k_init: q.ecsq_k_init,
            max_iter: q.ecsq_max_iter,
        },
        "universal" => MethodSpec::Universal {
            k,
            centre: q.universal_centre.clone(),
        },
        "soft-sharing" => MethodSpec::SoftSharing {
            tau: value,
            settings: q.soft_sharing.clone(),
        },
        _ => MethodSpec::None,
    }
}

/// The method's variants along its own axis (none when it is searched).
fn variants(method: &str, axes: &Axes, q: &QuantizerSettings) -> Vec<MethodSpec> {
    let values: Vec<f64> = match method {
        m if K_METHODS.contains(&m) => axes.k.iter().map(|&k| k as f64).collect(),
        m if LAMBDA_METHODS.contains(&m) => axes.lambda.clone(),
        _ => return vec![MethodSpec::None],
    };
    values
        .into_iter()
        .map(|v| method_at(method, v, q))
        .collect()
}

/// The weightings and scopes `method` takes: the axes, but for
/// soft-sharing, whose mixture is learned over all layers at once and
/// weighs no importance, only `none` and `global`.
fn weightings_and_scopes<'a>(method: &str, axes: &'a Axes) -> (Vec<&'a str>, Vec<Scope>) {
    if method == "soft-sharing" {
        (vec!["none"], vec![Scope::Global])
    } else {
        (
            axes.weighting.iter().map(String::as_str).collect(),
            axes.scope.clone(),
        )
    }
}

/// The range `method`'s parameter is searched over, if it is.
fn searched(method: &str, search: Option<&SearchSettings>) -> Option<SearchSpace> {
    let s = search?;
    match method {
        m if K_METHODS.contains(&m) => s.k,
        m if LAMBDA_METHODS.contains(&m) => s.lambda,
        _ => None,
    }
}

impl SearchGroup {
    /// The pruning setting of the network the budget counts from (`None`:
    /// the unpruned one): `reference` if set, else the template's own.
    pub fn reference_prune(&self) -> Option<&str> {
        match self.reference.as_deref() {
            Some("none") => None,
            Some(name) => Some(name),
            None => self.template.prune.as_ref().map(|p| p.name.as_str()),
        }
    }

    /// The cell of this search for `seed` with the parameter at `value`.
    pub fn cell(&self, seed: u64, value: f64) -> CellSpec {
        let t = &self.template;
        let mut method = t.method.clone();
        match &mut method {
            MethodSpec::Kmeans { k, .. }
            | MethodSpec::KmeansOptimal { k }
            | MethodSpec::Uniform { k, .. }
            | MethodSpec::Universal { k, .. } => *k = value as usize,
            MethodSpec::Ecsq { lambda, .. } => *lambda = value,
            MethodSpec::SoftSharing { tau, .. } => *tau = value,
            MethodSpec::None => {}
        }
        let prune = t.prune.as_ref().map_or("none", |p| p.name.as_str());
        let weighting = t.weighting.as_ref().map_or("none", |w| w.name.as_str());
        let rest = t.scope.zip(t.coding).map(|(scope, coding)| {
            (
                weighting,
                scope,
                coding,
                t.finetune.is_some(),
                t.rounding.as_ref(),
            )
        });
        CellSpec {
            index: 0,
            id: cell_id(seed, prune, &method, rest, None),
            seed,
            method,
            ..t.clone()
        }
    }
}

fn cell_id(
    seed: u64,
    prune: &str,
    method: &MethodSpec,
    rest: Option<(&str, Scope, Coding, bool, Option<&CompensationSpec>)>,
    quantizer_seed: Option<u64>,
) -> String {
    let mut id = format!("s{seed}.{prune}.{}", method.name());
    if let Some(k) = method.k() {
        id.push_str(&format!(".k{k}"));
    }
    if let Some(l) = method.lambda() {
        id.push_str(&format!(".l{l}"));
    }
    if let Some((weighting, scope, coding, finetune, compensated)) = rest {
        let scope = match scope {
            Scope::Layer => "layer",
            Scope::Global => "global",
        };
        id.push_str(&format!(".{weighting}.{scope}.{coding}"));
        if finetune {
            id.push_str(".ft");
        }
        if let Some(rounding) = compensated {
            id.push_str(rounding_suffix(rounding));
        }
    }
    if let Some(q) = quantizer_seed {
        id.push_str(&format!(".q{q}"));
    }
    id
}

/// The end of the ids of compensated cells.
fn rounding_suffix(rounding: &CompensationSpec) -> &'static str {
    match (rounding.sequential, rounding.act_order) {
        (false, false) => ".comp",
        (false, true) => ".comp-act",
        (true, false) => ".comp-seq",
        (true, true) => ".comp-seq-act",
    }
}

/// Every cell of the grid, in the fixed order, and the searches (in the
/// same order, without the seed).
pub fn expand(
    axes: &Axes,
    prunes: &BTreeMap<String, PruneSpec>,
    importances: &BTreeMap<String, ImportanceSpec>,
    q: &QuantizerSettings,
    finetune: Option<&FinetuneSpec>,
    search: Option<&SearchSettings>,
) -> (Vec<CellSpec>, Vec<SearchGroup>) {
    let mut cells = Vec::new();
    let mut push = |cell: CellSpec| {
        let index = cells.len();
        cells.push(CellSpec { index, ..cell });
    };
    for &seed in &axes.seed {
        for prune_name in &axes.prune {
            let prune = prunes.get(prune_name).cloned();
            for method in &axes.method {
                if searched(method, search).is_some() {
                    continue;
                }
                if method == "none" {
                    push(CellSpec {
                        index: 0,
                        id: cell_id(seed, prune_name, &MethodSpec::None, None, None),
                        seed,
                        prune: prune.clone(),
                        weighting: None,
                        method: MethodSpec::None,
                        scope: None,
                        coding: None,
                        finetune: None,
                        rounding: None,
                        quantizer_seed: None,
                    });
                    continue;
                }
                let (weightings, scopes) = weightings_and_scopes(method, axes);
                for &weighting in &weightings {
                    for &scope in &scopes {
                        for spec in variants(method, axes, q) {
                            for &coding in &axes.coding {
                                for &ft in &axes.finetune {
                                    for &comp in roundings(method, axes) {
                                        let rounding = comp.spec(q);
                                        for &qs in quantizer_seeds(&spec, axes) {
                                            push(CellSpec {
                                                index: 0,
                                                id: cell_id(
                                                    seed,
                                                    prune_name,
                                                    &spec,
                                                    Some((
                                                        weighting,
                                                        scope,
                                                        coding,
                                                        ft,
                                                        rounding.as_ref(),
                                                    )),
                                                    qs,
                                                ),
                                                seed,
                                                prune: prune.clone(),
                                                weighting: importances.get(weighting).cloned(),
                                                method: spec.clone(),
                                                scope: Some(scope),
                                                coding: Some(coding),
                                                finetune: if ft { finetune.cloned() } else { None },
                                                rounding,
                                                quantizer_seed: qs,
                                            });
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    let mut searches = Vec::new();
    let (Some(settings), Some(&first_seed)) = (search, axes.seed.first()) else {
        return (cells, searches);
    };
    for prune_name in &axes.prune {
        for method in &axes.method {
            let Some(space) = searched(method, search) else {
                continue;
            };
            let (weightings, scopes) = weightings_and_scopes(method, axes);
            for &weighting in &weightings {
                for &scope in &scopes {
                    for &coding in &axes.coding {
                        for &ft in &axes.finetune {
                            for &comp in roundings(method, axes) {
                                let rounding = comp.spec(q);
                                let spec = method_at(method, space.conservative(), q);
                                let mut id =
                                    format!("{prune_name}.{method}.{weighting}.{scope}.{coding}");
                                if ft {
                                    id.push_str(".ft");
                                }
                                if let Some(rounding) = &rounding {
                                    id.push_str(rounding_suffix(rounding));
                                }
                                let template = CellSpec {
                                    index: 0,
                                    id: cell_id(
                                        first_seed,
                                        prune_name,
                                        &spec,
                                        Some((weighting, scope, coding, ft, rounding.as_ref())),
                                        None,
                                    ),
                                    seed: first_seed,
                                    prune: prunes.get(prune_name).cloned(),
                                    weighting: importances.get(weighting).cloned(),
                                    method: spec,
                                    scope: Some(scope),
                                    coding: Some(coding),
                                    finetune: if ft { finetune.cloned() } else { None },
                                    rounding,
                                    quantizer_seed: None,
                                };
                                searches.push(SearchGroup {
                                    id,
                                    seeds: axes.seed.clone(),
                                    goal: settings.goal,
                                    reference: settings.reference.clone(),
                                    space,
                                    template,
                                });
                            }
                        }
                    }
                }
            }
        }
    }
    (cells, searches)
}
