//! Grid expansion, one test per kind of mistake, and cache keys.

use std::collections::BTreeSet;
use std::path::Path;

use super::keys::cell_keys;
use super::spec::{CellSpec, CompensationSpec, MethodSpec};
use super::*;
use crate::search::SearchGoal;

const BASE: &str = r#"
name = "t"
description = "tests"

[model]
arch = "lenet5"
dataset = "fashion-mnist"

[train]
epochs = 2
optimizer = "adam"
lr = 1e-3
batch_size = 64

[prune.paper]
keep = 0.1
retrain_epochs = 1

[importance.hessian]
estimator = "hutchinson"
samples = 100

[finetune]
epochs = 1
lr = 1e-4

[grid]
seed = [0, 1]
prune = ["none", "paper"]
method = ["none", "kmeans", "ecsq"]
weighting = ["none", "hessian"]
scope = ["layer", "global"]
k = [4, 8]
lambda = [0.1]
finetune = [false, true]
"#;

fn load_str(source: &str) -> Result<Grid, GridError> {
    parse(source, Path::new("g.toml"))
}

#[test]
fn axes_that_do_not_apply_do_not_multiply() {
    let g = load_str(BASE).unwrap();
    // per seed and pruning: none 1; kmeans 2 weightings x 2 scopes x 2 k x
    // 2 finetune = 16; ecsq 2 x 2 x 1 lambda x 2 = 8
    assert_eq!(g.cells.len(), 2 * 2 * (1 + 16 + 8));
    assert!(g.cells.iter().enumerate().all(|(i, c)| c.index == i));
    let ids: Vec<&str> = g.cells.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(
        &ids[..4],
        &[
            "s0.none.none",
            "s0.none.kmeans.k4.none.layer.huffman",
            "s0.none.kmeans.k4.none.layer.huffman.ft",
            "s0.none.kmeans.k8.none.layer.huffman",
        ]
    );
    assert_eq!(ids[25], "s0.paper.none");
    assert_eq!(
        ids.iter().collect::<std::collections::HashSet<_>>().len(),
        ids.len()
    );
    let none = &g.cells[0];
    assert!(none.scope.is_none() && none.weighting.is_none() && none.finetune.is_none());
    let ecsq = g.cells.iter().find(|c| c.method.name() == "ecsq").unwrap();
    assert_eq!(
        ecsq.method,
        MethodSpec::Ecsq {
            lambda: 0.1,
            k_init: 256,
            max_iter: 100
        }
    );
}

#[test]
fn the_order_is_fixed() {
    let a = load_str(BASE).unwrap();
    let b = load_str(BASE).unwrap();
    assert_eq!(a.cells, b.cells);
}

/// `BASE` with `from` replaced by `to`, which must fail naming `key` on
/// `line` with `needle` in the message.
fn mistake(from: &str, to: &str, key: &str, line: usize, needle: &str) {
    assert!(BASE.contains(from), "{from:?} is not in the base grid");
    let source = BASE.replacen(from, to, 1);
    let err = load_str(&source).unwrap_err();
    let text = err.to_string();
    assert_eq!(err.key, key, "{text}");
    assert_eq!(err.line, Some(line), "{text}");
    assert!(err.message.contains(needle), "{text} lacks {needle:?}");
    assert!(
        text.starts_with(&format!("g.toml:{line}: `{key}`: ")),
        "{text}"
    );
}

#[test]
fn unknown_key() {
    mistake(
        "batch_size = 64",
        "batch_size = 64\nbatchsize = 64",
        "train.batchsize",
        14,
        "unknown field",
    );
}

#[test]
fn wrong_type() {
    mistake(
        "epochs = 2",
        "epochs = \"two\"",
        "train.epochs",
        10,
        "expected usize",
    );
}

#[test]
fn missing_key() {
    mistake("lr = 1e-3\n", "", "train.lr", 9, "missing field `lr`");
}

#[test]
fn syntax_error() {
    let err = load_str(&BASE.replacen("[grid]", "[grid", 1)).unwrap_err();
    assert_eq!(err.to_string(), "g.toml:27: unclosed table, expected `]`");
}

#[test]
fn unknown_arch() {
    mistake(
        "arch = \"lenet5\"",
        "arch = \"lenet6\"",
        "model.arch",
        6,
        "lenet6",
    );
}

#[test]
fn arch_and_dataset_do_not_fit() {
    mistake(
        "arch = \"lenet5\"",
        "arch = \"alexnet\"",
        "model.dataset",
        7,
        "not built for fashion-mnist",
    );
}

#[test]
fn the_language_model_and_the_text_go_only_together() {
    mistake(
        "arch = \"lenet5\"",
        "arch = \"char-gpt\"",
        "model.dataset",
        7,
        "char-gpt is not built for fashion-mnist",
    );
    let text = BASE.replacen(
        "dataset = \"fashion-mnist\"",
        "dataset = \"shakespeare\"",
        1,
    );
    let err = load_str(&text).unwrap_err().to_string();
    assert!(err.contains("lenet5 is not built for shakespeare"), "{err}");
    assert!(load_str(&text.replacen("arch = \"lenet5\"", "arch = \"char-gpt\"", 1)).is_ok());
    let vit = BASE.replacen("arch = \"lenet5\"", "arch = \"vit\"", 1);
    assert!(load_str(&vit).is_ok());
}

#[test]
fn the_cifar_resnets_take_the_grey_28x28_datasets() {
    for arch in ["resnet20", "resnet32"] {
        let source = BASE.replacen("arch = \"lenet5\"", &format!("arch = \"{arch}\""), 1);
        assert!(load_str(&source).is_ok(), "{arch} on fashion-mnist");
    }
}

#[test]
fn unknown_optimizer() {
    mistake(
        "optimizer = \"adam\"",
        "optimizer = \"rmsprop\"",
        "train.optimizer",
        11,
        "sgd, adam",
    );
}

#[test]
fn step_schedule_needs_its_step() {
    mistake(
        "batch_size = 64",
        "batch_size = 64\nschedule = \"step\"",
        "train.step_every",
        9,
        "required",
    );
}

#[test]
fn k_out_of_range() {
    mistake(
        "k = [4, 8]",
        "k = [4, 0]",
        "grid.k",
        33,
        "expected 1 <= k <= 65536, got 0",
    );
    mistake(
        "k = [4, 8]",
        "k = [100000000000]",
        "grid.k",
        33,
        "expected 1 <= k <= 65536, got 100000000000",
    );
}

#[test]
fn keep_out_of_range() {
    mistake("keep = 0.1", "keep = 1.5", "prune.paper.keep", 16, "(0, 1]");
}

#[test]
fn unknown_estimator() {
    mistake(
        "\"hutchinson\"",
        "\"lecun\"",
        "importance.hessian.estimator",
        20,
        "gauss-newton",
    );
}

#[test]
fn setting_that_does_not_apply_to_the_estimator() {
    mistake(
        "samples = 100",
        "samples = 100\nsource = \"training\"",
        "importance.hessian.source",
        22,
        "does not apply",
    );
}

#[test]
fn reserved_name() {
    mistake(
        "[prune.paper]",
        "[prune.none]",
        "prune.none",
        15,
        "reserved",
    );
}

#[test]
fn unknown_pruning_name() {
    mistake(
        "prune = [\"none\", \"paper\"]",
        "prune = [\"none\", \"papr\"]",
        "grid.prune",
        29,
        "[prune.papr]",
    );
}

#[test]
fn unknown_weighting_name() {
    mistake(
        "weighting = [\"none\", \"hessian\"]",
        "weighting = [\"hesian\"]",
        "grid.weighting",
        31,
        "hesian",
    );
}

#[test]
fn unknown_method() {
    mistake(
        "\"ecsq\"]",
        "\"ecsq\", \"gptq\"]",
        "grid.method",
        30,
        "gptq",
    );
}

#[test]
fn zero_k() {
    mistake("k = [4, 8]", "k = [0, 8]", "grid.k", 33, "1 <= k");
}

#[test]
fn negative_lambda() {
    mistake(
        "lambda = [0.1]",
        "lambda = [-0.1]",
        "grid.lambda",
        34,
        "lambda >= 0",
    );
}

#[test]
fn duplicate_axis_value() {
    mistake("seed = [0, 1]", "seed = [0, 0]", "grid.seed", 28, "twice");
}

#[test]
fn k_without_a_method_that_takes_it() {
    mistake(
        "\"none\", \"kmeans\", \"ecsq\"",
        "\"none\", \"ecsq\"",
        "grid.k",
        33,
        "takes k",
    );
}

#[test]
fn ecsq_without_lambda() {
    mistake("lambda = [0.1]\n", "", "grid.method", 30, "grid.lambda");
}

#[test]
fn finetune_without_its_table() {
    mistake(
        "[finetune]\nepochs = 1\nlr = 1e-4\n",
        "",
        "grid.finetune",
        32,
        "[finetune]",
    );
}

#[test]
fn bad_coding() {
    mistake(
        "finetune = [false, true]",
        "finetune = [false, true]\ncoding = [\"zip\"]",
        "grid.coding",
        36,
        "zip",
    );
}

#[test]
fn missing_file_names_the_file() {
    let err = load(Path::new("/no/such/grid.toml")).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("/no/such/grid.toml: cannot read"),
        "{err}"
    );
}

#[test]
fn keys_change_with_their_inputs_and_nothing_else() {
    let base = load_str(BASE).unwrap();
    let cell = |g: &Grid, id: &str| g.cells.iter().find(|c| c.id == id).unwrap().clone();
    let id = "s0.paper.kmeans.k8.hessian.global.huffman.ft";
    let keys = cell_keys(&base, &cell(&base, id));
    assert!(keys.importance.is_some() && keys.network != keys.baseline);

    // nothing else: names, description, other axes, other settings
    for (from, to) in [
        ("name = \"t\"", "name = \"u\""),
        ("description = \"tests\"", "description = \"other\""),
        ("seed = [0, 1]", "seed = [0]"),
        ("lambda = [0.1]", "lambda = [0.2]"),
        ("k = [4, 8]", "k = [8, 16]"),
        ("scope = [\"layer\", \"global\"]", "scope = [\"global\"]"),
    ] {
        let g = load_str(&BASE.replacen(from, to, 1)).unwrap();
        assert_eq!(cell_keys(&g, &cell(&g, id)), keys, "{from} -> {to}");
    }
    let renamed = BASE
        .replacen("[prune.paper]", "[prune.p2]", 1)
        .replacen("\"paper\"]", "\"p2\"]", 1)
        .replacen("[importance.hessian]", "[importance.h2]", 1)
        .replacen("\"hessian\"]", "\"h2\"]", 1);
    let g = load_str(&renamed).unwrap();
    let renamed_keys = cell_keys(&g, &cell(&g, "s0.p2.kmeans.k8.h2.global.huffman.ft"));
    assert_eq!(renamed_keys, keys, "names are labels");

    // each input changes the keys from its stage on
    let changed = |from: &str, to: &str, id: &str| {
        let g = load_str(&BASE.replacen(from, to, 1)).unwrap();
        cell_keys(&g, &cell(&g, id))
    };
    let k = changed("epochs = 2", "epochs = 3", id);
    assert!(k.baseline != keys.baseline && k.result != keys.result);
    let k = changed("dataset = \"fashion-mnist\"", "dataset = \"mnist\"", id);
    assert_ne!(k.baseline, keys.baseline);
    let k = changed("keep = 0.1", "keep = 0.2", id);
    assert_eq!(k.baseline, keys.baseline);
    assert!(
        k.network != keys.network && k.importance != keys.importance && k.result != keys.result
    );
    let k = changed("samples = 100", "samples = 200", id);
    assert_eq!(k.network, keys.network);
    assert!(k.importance != keys.importance && k.result != keys.result);
    let k = changed("lr = 1e-4", "lr = 1e-5", id);
    assert_eq!(
        (k.network.clone(), k.importance.clone()),
        (keys.network.clone(), keys.importance.clone())
    );
    assert_ne!(k.result, keys.result);
    // centres that train are the default, written out or not; a pass that
    // only re-estimates batch norm makes another fine-tuned network
    let k = changed("lr = 1e-4", "lr = 1e-4\ntrain_centres = true", id);
    assert_eq!(k, keys);
    let k = changed("lr = 1e-4", "lr = 1e-4\ntrain_centres = false", id);
    assert_eq!(
        (k.network.clone(), k.importance.clone()),
        (keys.network.clone(), keys.importance.clone())
    );
    assert!(k.quantized != keys.quantized && k.result != keys.result);
    let other_seed = cell_keys(
        &base,
        &cell(&base, "s1.paper.kmeans.k8.hessian.global.huffman.ft"),
    );
    assert_ne!(other_seed.baseline, keys.baseline);
    let other_k = cell_keys(
        &base,
        &cell(&base, "s0.paper.kmeans.k4.hessian.global.huffman.ft"),
    );
    assert_eq!(other_k.importance, keys.importance);
    assert_ne!(other_k.result, keys.result);
    let no_ft = cell_keys(
        &base,
        &cell(&base, "s0.paper.kmeans.k8.hessian.global.huffman"),
    );
    assert_ne!(no_ft.result, keys.result);
    // the coding changes the file, not the quantized network
    let fixed = changed(
        "finetune = [false, true]",
        "finetune = [false, true]\ncoding = [\"fixed\"]",
        &id.replace("huffman", "fixed"),
    );
    assert_eq!(fixed.quantized, keys.quantized);
    assert_ne!(fixed.result, keys.result);
    assert_ne!(other_k.quantized, keys.quantized);
    assert_ne!(no_ft.quantized, keys.quantized);
}

#[test]
fn every_grid_in_experiments_loads() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments");
    let mut count = 0;
    let full = std::fs::read_dir(dir.join("full")).unwrap();
    for entry in std::fs::read_dir(&dir).unwrap().chain(full) {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let grid = load(&path).unwrap_or_else(|e| panic!("{e}"));
            assert!(!grid.cells.is_empty(), "{}", path.display());
            assert_eq!(
                path.file_stem().unwrap().to_str().unwrap(),
                grid.name,
                "a grid file is named after its grid"
            );
            count += 1;
        }
    }
    assert!(count >= 8, "{count} grids in {}", dir.display());
}

#[test]
fn importance_keys_change_only_where_the_values_did() {
    // the keys of main before the batched Gauss-Newton diagonal: Hutchinson's
    // values are bit for bit the same, so its key is kept; the batched GGN sums
    // in another order (and through the Cholesky columns), so its key moved
    let id = "s0.none.kmeans.k8.hessian.global.huffman";
    let key = |source: &str| {
        let g = load_str(source).unwrap();
        let c = g.cells.iter().find(|c| c.id == id).unwrap();
        cell_keys(&g, c).importance.unwrap()
    };
    assert_eq!(key(BASE), "678b9607ba08d9a6ea91");
    let gn = BASE.replace("estimator = \"hutchinson\"", "estimator = \"gauss-newton\"");
    assert_ne!(key(&gn), "dca4f5ac1f0f7797b6ff");
    let mc = BASE.replace(
        "estimator = \"hutchinson\"",
        "estimator = \"gauss-newton-mc\"",
    );
    let mc2 = mc.replace("samples = 100", "samples = 100\ndraws = 2");
    assert!(key(&mc) != key(&gn) && key(&mc2) != key(&mc));
}

#[test]
fn draws_apply_only_to_the_monte_carlo_gauss_newton() {
    mistake(
        "samples = 100",
        "samples = 100\ndraws = 2",
        "importance.hessian.draws",
        22,
        "does not apply",
    );
    let zero = BASE
        .replace(
            "estimator = \"hutchinson\"",
            "estimator = \"gauss-newton-mc\"",
        )
        .replace("samples = 100", "samples = 100\ndraws = 0");
    let err = load_str(&zero).unwrap_err();
    assert_eq!(err.key, "importance.hessian.draws", "{err}");
}

/// `BASE` with k and lambda searched instead of swept.
fn searched_grid() -> String {
    BASE.replace("k = [4, 8]\nlambda = [0.1]\n", "").replace(
        "[grid]",
        "[search]\nbudget = 0.1\nk = [2, 64]\nlambda = [1e-5, 1e-2]\n\n[grid]",
    )
}

#[test]
fn searched_parameters_become_searches_not_cells() {
    let g = load_str(&searched_grid()).unwrap();
    // only the unquantized cells stay: 2 seeds x 2 prunings
    assert_eq!(g.cells.len(), 4);
    assert!(g.cells.iter().all(|c| c.method == MethodSpec::None));
    // per pruning: (kmeans, ecsq) x 2 weightings x 2 scopes x 1 coding x 2 finetune
    assert_eq!(g.searches.len(), 2 * 2 * 2 * 2 * 2);
    let s = &g.searches[0];
    assert_eq!(s.id, "none.kmeans.none.layer.huffman");
    assert_eq!(
        (s.seeds.clone(), s.goal),
        (vec![0, 1], SearchGoal::Budget { budget: 0.1 })
    );
    let cell = s.cell(1, 11.0);
    assert_eq!(cell.id, "s1.none.kmeans.k11.none.layer.huffman");
    assert_eq!((cell.seed, cell.method.k()), (1, Some(11)));
    let ecsq = g
        .searches
        .iter()
        .find(|s| s.id == "paper.ecsq.hessian.global.huffman.ft");
    let cell = ecsq.unwrap().cell(0, 3.16e-4);
    assert_eq!(cell.id, "s0.paper.ecsq.l0.000316.hessian.global.huffman.ft");
    assert!(cell.finetune.is_some() && cell.prune.is_some());
    // a searched point is the same cell, with the same cache keys, as a swept one
    let swept = load_str(BASE).unwrap();
    let twin = swept
        .cells
        .iter()
        .find(|c| c.id == "s0.paper.kmeans.k8.hessian.global.huffman.ft")
        .unwrap();
    let search = g
        .searches
        .iter()
        .find(|s| s.id == "paper.kmeans.hessian.global.huffman.ft")
        .unwrap();
    let point = search.cell(0, 8.0);
    assert_eq!(point.id, twin.id);
    assert_eq!(cell_keys(&g, &point), cell_keys(&swept, twin));
}

#[test]
fn widen_sets_how_far_past_its_range_a_search_may_go() {
    use crate::search::SearchSpace;
    let spaces = |source: &str| {
        let g = load_str(source).unwrap();
        let kmeans = g
            .searches
            .iter()
            .find(|s| s.id.contains(".kmeans."))
            .unwrap();
        let ecsq = g.searches.iter().find(|s| s.id.contains(".ecsq.")).unwrap();
        (kmeans.space, ecsq.space)
    };
    let (k, lambda) = spaces(&searched_grid());
    assert_eq!(k, SearchSpace::k(2, 64));
    assert!(matches!(lambda, SearchSpace::Lambda { min, limit, .. } if limit == min));
    let (k, lambda) = spaces(&searched_grid().replace("budget = 0.1", "budget = 0.1\nwiden = 4"));
    assert_eq!(
        k,
        SearchSpace::K {
            min: 2,
            max: 64,
            limit: 256
        }
    );
    assert!(matches!(lambda, SearchSpace::Lambda { limit, .. } if limit == 2.5e-6));
}

#[test]
fn a_search_reference_names_one_network_for_every_search() {
    let g =
        load_str(&searched_grid().replace("budget = 0.1", "budget = 0.1\nreference = \"none\""))
            .unwrap();
    assert!(g.searches.iter().all(|s| s.reference_prune().is_none()));
    let g =
        load_str(&searched_grid().replace("budget = 0.1", "budget = 0.1\nreference = \"paper\""))
            .unwrap();
    assert!(g
        .searches
        .iter()
        .all(|s| s.reference_prune() == Some("paper")));
    // by default each search's own pruning
    let g = load_str(&searched_grid()).unwrap();
    assert!(g.searches.iter().all(|s| s.reference.is_none()
        && s.reference_prune() == s.template.prune.as_ref().map(|p| p.name.as_str())));
    assert!(g.searches.iter().any(|s| s.reference_prune().is_none()));
}

fn search_mistake(from: &str, to: &str, key: &str, needle: &str) {
    let source = searched_grid();
    assert!(
        source.contains(from),
        "{from:?} is not in the searched grid"
    );
    let err = load_str(&source.replacen(from, to, 1)).unwrap_err();
    let text = err.to_string();
    assert_eq!(err.key, key, "{text}");
    assert!(err.line.is_some(), "{text}");
    assert!(err.message.contains(needle), "{text} lacks {needle:?}");
}

#[test]
fn a_rate_search_needs_no_unquantized_network() {
    let source = searched_grid()
        .replace("budget = 0.1", "rate = 2.5")
        .replace(
            "method = [\"none\", \"kmeans\", \"ecsq\"]",
            "method = [\"kmeans\", \"ecsq\"]",
        );
    let g = load_str(&source).unwrap();
    assert!(g.cells.is_empty());
    assert_eq!(g.searches.len(), 2 * 2 * 2 * 2 * 2);
    assert!(g
        .searches
        .iter()
        .all(|s| s.goal == SearchGoal::Rate { bits: 2.5 }));
}

#[test]
fn search_mistakes_name_their_key() {
    search_mistake(
        "budget = 0.1",
        "budget = -1.0",
        "search.budget",
        "expected a budget >= 0",
    );
    search_mistake("k = [2, 64]", "k = [64, 2]", "search.k", "min <= max");
    search_mistake("k = [2, 64]", "k = [0, 64]", "search.k", "min >= 1");
    search_mistake("k = [2, 64]", "k = [2, 65537]", "search.k", "max <= 65536");
    search_mistake("k = [2, 64]", "k = [2, 8, 64]", "search.k", "got 3 values");
    search_mistake(
        "lambda = [1e-5, 1e-2]",
        "lambda = [0.0, 1e-2]",
        "search.lambda",
        "min >=",
    );
    search_mistake(
        "lambda = [1e-5, 1e-2]",
        "lambda = [1e-5, 1e-2]\nlambda_ratio = 1.0",
        "search.lambda_ratio",
        "ratio > 1",
    );
    search_mistake(
        "budget = 0.1",
        "budget = 0.1\nwiden = 0",
        "search.widen",
        "factor >= 1",
    );
    search_mistake(
        "k = [2, 64]",
        "k = [2, 64]\nwiden = 2048",
        "search.widen",
        "<= 65536",
    );
    search_mistake(
        "budget = 0.1",
        "budget = 0.1\nrate = 2.0",
        "search.rate",
        "not both",
    );
    search_mistake("budget = 0.1", "widen = 1", "search", "rate = ");
    search_mistake("budget = 0.1", "rate = 0.0", "search.rate", "rate > 0");
    search_mistake(
        "budget = 0.1",
        "rate = 2.0\nreference = \"paper\"",
        "search.reference",
        "no reference network",
    );
    search_mistake(
        "budget = 0.1",
        "budget = 0.1\nkk = 3",
        "search.kk",
        "unknown field",
    );
    search_mistake(
        "budget = 0.1",
        "budget = 0.1\nreference = \"gradual\"",
        "search.reference",
        "not in grid.prune",
    );
    search_mistake(
        "method = [\"none\", \"kmeans\", \"ecsq\"]",
        "method = [\"kmeans\", \"ecsq\"]",
        "grid.method",
        "add \"none\"",
    );
    search_mistake(
        "method = [\"none\", \"kmeans\", \"ecsq\"]",
        "method = [\"none\", \"kmeans\", \"ecsq\"]\nk = [4]",
        "grid.k",
        "k is searched",
    );
    search_mistake(
        "method = [\"none\", \"kmeans\", \"ecsq\"]",
        "method = [\"none\", \"kmeans\"]",
        "search.lambda",
        "no method",
    );
}

#[test]
fn a_sweep_and_a_search_mix() {
    // k searched, lambda swept
    let source = searched_grid()
        .replace("lambda = [1e-5, 1e-2]\n", "")
        .replace(
            "finetune = [false, true]",
            "finetune = [false, true]\nlambda = [0.1]",
        );
    let g = load_str(&source).unwrap();
    assert!(g.cells.iter().any(|c| c.method.name() == "ecsq"));
    assert!(g
        .searches
        .iter()
        .all(|s| s.template.method.name() == "kmeans"));
}

#[test]
fn gradual_and_obd_pruning() {
    use super::spec::{PruneCriterion, PruneSchedule, PruneSettings};
    let prune_of = |g: &Grid| -> PruneSettings {
        g.cells
            .iter()
            .find_map(|c| c.prune.clone())
            .unwrap()
            .settings
    };
    let g = load_str(&BASE.replacen(
        "retrain_epochs = 1",
        "retrain_epochs = 4\nschedule = \"gradual\"\nsteps = 2\ncriterion = \"obd\"\nsamples = 500",
        1,
    ))
    .unwrap();
    let settings = prune_of(&g);
    assert_eq!(settings.schedule, PruneSchedule::Gradual { steps: 2 });
    assert_eq!(settings.criterion, PruneCriterion::Obd { samples: 500 });
    // defaults: gradual in 4 steps, OBD on 1,000 examples
    let g = load_str(&BASE.replacen(
        "retrain_epochs = 1",
        "retrain_epochs = 4\nschedule = \"gradual\"\ncriterion = \"obd\"",
        1,
    ))
    .unwrap();
    let settings = prune_of(&g);
    assert_eq!(settings.schedule, PruneSchedule::Gradual { steps: 4 });
    assert_eq!(settings.criterion, PruneCriterion::Obd { samples: 1000 });

    // the defaults keep the keys of the networks pruned before these existed
    let id = "s0.paper.kmeans.k8.hessian.global.huffman.ft";
    let cell = |g: &Grid| g.cells.iter().find(|c| c.id == id).unwrap().clone();
    let base = load_str(BASE).unwrap();
    let explicit = load_str(&BASE.replacen(
        "retrain_epochs = 1",
        "retrain_epochs = 1\nschedule = \"one-shot\"\ncriterion = \"magnitude\"",
        1,
    ))
    .unwrap();
    assert_eq!(
        cell_keys(&explicit, &cell(&explicit)),
        cell_keys(&base, &cell(&base))
    );
    let json = serde_json::to_string(&prune_of(&base)).unwrap();
    assert_eq!(
        json,
        r#"{"keep":0.1,"scope":"layer","retrain_epochs":1,"lr":0.0001}"#
    );
    let gradual = load_str(&BASE.replacen(
        "retrain_epochs = 1",
        "retrain_epochs = 1\nschedule = \"gradual\"\nsteps = 1",
        1,
    ))
    .unwrap();
    assert_ne!(
        cell_keys(&gradual, &cell(&gradual)).network,
        cell_keys(&base, &cell(&base)).network
    );
}

#[test]
fn bad_pruning_schedules_name_their_key() {
    mistake(
        "retrain_epochs = 1",
        "retrain_epochs = 1\nschedule = \"slowly\"",
        "prune.paper.schedule",
        18,
        "slowly",
    );
    mistake(
        "retrain_epochs = 1",
        "retrain_epochs = 1\nschedule = \"gradual\"\nsteps = 3",
        "prune.paper.steps",
        19,
        "retrain_epochs = 1",
    );
    mistake(
        "retrain_epochs = 1",
        "retrain_epochs = 1\nsteps = 3",
        "prune.paper.steps",
        18,
        "gradual",
    );
    mistake(
        "retrain_epochs = 1",
        "retrain_epochs = 1\ncriterion = \"obd\"\nsamples = 0",
        "prune.paper.samples",
        19,
        "at least 1",
    );
    mistake(
        "retrain_epochs = 1",
        "retrain_epochs = 1\ncriterion = \"hessian\"",
        "prune.paper.criterion",
        18,
        "hessian",
    );
}

#[test]
fn universal_takes_k_and_midpoint_centres_unless_told() {
    let source = BASE
        .replace(
            "method = [\"none\", \"kmeans\", \"ecsq\"]",
            "method = [\"none\", \"universal\"]",
        )
        .replace("lambda = [0.1]\n", "");
    let g = load_str(&source).unwrap();
    let universal: Vec<&CellSpec> = g
        .cells
        .iter()
        .filter(|c| c.method.name() == "universal")
        .collect();
    // 2 seeds x 2 prunings x 2 weightings x 2 scopes x 2 k x 2 finetune
    assert_eq!(universal.len(), 64);
    assert_eq!(universal[0].id, "s0.none.universal.k4.none.layer.huffman");
    assert_eq!(
        universal[0].method,
        MethodSpec::Universal {
            k: 4,
            centre: "midpoint".into()
        }
    );
    let told = source.replace(
        "[finetune]",
        "[quantizer]\nuniversal_centre = \"weighted-mean\"\n\n[finetune]",
    );
    let g = load_str(&told).unwrap();
    let c = g
        .cells
        .iter()
        .find(|c| c.method.name() == "universal")
        .unwrap();
    assert_eq!(
        c.method,
        MethodSpec::Universal {
            k: 4,
            centre: "weighted-mean".into()
        }
    );
    let err = load_str(&source.replace(
        "[finetune]",
        "[quantizer]\nuniversal_centre = \"median\"\n\n[finetune]",
    ))
    .unwrap_err();
    assert_eq!(err.key, "quantizer.universal_centre", "{err}");
    // without a k list it says which methods need one
    let err = load_str(&source.replace("k = [4, 8]\n", "")).unwrap_err();
    assert!(
        err.message.contains("universal need a grid.k list"),
        "{err}"
    );
}

#[test]
fn soft_sharing_takes_lambda_as_tau_and_its_own_table() {
    let source = BASE
        .replace(
            "method = [\"none\", \"kmeans\", \"ecsq\"]",
            "method = [\"none\", \"soft-sharing\"]",
        )
        .replace(
            "weighting = [\"none\", \"hessian\"]",
            "weighting = [\"none\"]",
        )
        .replace("scope = [\"layer\", \"global\"]", "scope = [\"global\"]")
        .replace("k = [4, 8]\n", "")
        .replace("lambda = [0.1]", "lambda = [0.005, 0.02]");
    let g = load_str(&source).unwrap();
    let soft: Vec<&CellSpec> = g
        .cells
        .iter()
        .filter(|c| c.method.name() == "soft-sharing")
        .collect();
    // 2 seeds x 2 prunings x 2 tau x 2 finetune
    assert_eq!(soft.len(), 16);
    assert_eq!(
        soft[0].id,
        "s0.none.soft-sharing.l0.005.none.global.huffman"
    );
    let MethodSpec::SoftSharing { tau, settings } = &soft[0].method else {
        panic!("{:?}", soft[0].method)
    };
    assert_eq!(*tau, 0.005);
    assert_eq!(soft[0].method.lambda(), Some(0.005));
    // Ullrich et al.'s tutorial, but 10 epochs
    assert_eq!(
        (
            settings.epochs,
            settings.components,
            settings.pi_zero,
            settings.lr
        ),
        (10, 17, 0.999, 5e-4)
    );
    assert_eq!(settings.precision_prior, [250.0, 0.1]);
    let told = source.replace(
        "[finetune]",
        "[soft_sharing]\nepochs = 3\ncomponents = 9\nzero_precision_prior = [100.0, 1.0]\n\n[finetune]",
    );
    let g = load_str(&told).unwrap();
    let MethodSpec::SoftSharing { settings, .. } = &g.cells[1].method else {
        panic!("{:?}", g.cells[1].method)
    };
    assert_eq!((settings.epochs, settings.components), (3, 9));
    assert_eq!(settings.zero_precision_prior, [100.0, 1.0]);
    // and the settings are part of the cell's cache key
    let defaults = load_str(&source).unwrap();
    let default_keys = cell_keys(&defaults, &defaults.cells[1]);
    assert_ne!(cell_keys(&g, &g.cells[1]).quantized, default_keys.quantized);
    for (table, key) in [
        ("epochs = 0", "soft_sharing.epochs"),
        ("components = 1", "soft_sharing.components"),
        ("pi_zero = 1.0", "soft_sharing.pi_zero"),
        ("lr_means = -1e-4", "soft_sharing.lr_means"),
        (
            "precision_prior = [0.0, 1.0]",
            "soft_sharing.precision_prior",
        ),
        ("merge_kl = -1.0", "soft_sharing.merge_kl"),
    ] {
        let err = load_str(&source.replace(
            "[finetune]",
            &format!("[soft_sharing]\n{table}\n\n[finetune]"),
        ))
        .unwrap_err();
        assert_eq!(err.key, key, "{err}");
        assert!(err.line.is_some(), "{err}");
    }
    let err = load_str(&source.replace("[finetune]", "[soft_sharing]\ntaus = 1\n\n[finetune]"))
        .unwrap_err();
    assert!(err.to_string().contains("taus"), "{err}");
    // one mixture over all layers and no importance: the weighting and
    // scope axes do not multiply its cells, and other methods keep them
    let mixed = source
        .replace("scope = [\"global\"]", "scope = [\"layer\", \"global\"]")
        .replace(
            "weighting = [\"none\"]",
            "weighting = [\"none\", \"hessian\"]",
        )
        .replace("\"soft-sharing\"]", "\"soft-sharing\", \"ecsq\"]");
    let g = load_str(&mixed).unwrap();
    let count = |name: &str| g.cells.iter().filter(|c| c.method.name() == name).count();
    assert_eq!(count("soft-sharing"), 16);
    assert_eq!(count("ecsq"), 4 * 16);
    assert!(g
        .cells
        .iter()
        .filter(|c| c.method.name() == "soft-sharing")
        .all(|c| c.weighting.is_none() && c.scope == Some(nq_quant::scope::Scope::Global)));
    let err = load_str(&source.replace("lambda = [0.005, 0.02]\n", "")).unwrap_err();
    assert!(
        err.message
            .contains("ecsq and soft-sharing need a grid.lambda list"),
        "{err}"
    );
}

#[test]
fn a_torchscript_model_needs_its_file_and_the_file_is_in_the_keys() {
    mistake(
        "arch = \"lenet5\"",
        "arch = \"torchscript\"",
        "model.arch",
        6,
        "needs `model_file`",
    );
    mistake(
        "dataset = \"fashion-mnist\"",
        "dataset = \"fashion-mnist\"\nmodel_file = \"net.pt\"",
        "model.model_file",
        8,
        "only `arch = \"torchscript\"`",
    );
    mistake(
        "dataset = \"fashion-mnist\"",
        "dataset = \"tensors\"",
        "model.data_dir",
        5, // the absent key: its section's line
        "train.safetensors",
    );
    mistake(
        "dataset = \"fashion-mnist\"",
        "dataset = \"fashion-mnist\"\ntensors = \"conv\"",
        "model.tensors",
        8,
        "lenet5 quantizes its own layers",
    );
    mistake(
        "epochs = 2",
        "epochs = 0",
        "train.epochs",
        10,
        "only for a torchscript",
    );

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("net.pt");
    let grid = |pattern: &str| {
        BASE.replacen("arch = \"lenet5\"", "arch = \"torchscript\"", 1)
            .replacen(
                "dataset = \"fashion-mnist\"",
                &format!(
                    "dataset = \"fashion-mnist\"\nmodel_file = \"{}\"\ntensors = '{pattern}'",
                    file.display()
                ),
                1,
            )
            .replacen("epochs = 2", "epochs = 0", 1)
    };
    let err = load_str(&grid("fc")).unwrap_err();
    assert_eq!(err.key, "model.model_file", "{err}");
    assert!(err.to_string().contains("net.pt"), "{err}");
    std::fs::write(&file, b"one module").unwrap();
    let err = load_str(&grid("fc(")).unwrap_err();
    assert_eq!(err.key, "model.tensors", "{err}");
    let first = load_str(&grid("fc")).unwrap();
    assert_eq!(first.train.epochs, 0);
    std::fs::write(&file, b"another module").unwrap();
    let second = load_str(&grid("fc")).unwrap();
    let keys = |g: &Grid| cell_keys(g, &g.cells[0]).baseline;
    assert_ne!(keys(&first), keys(&second));
    let compensated = grid("fc").replacen(
        "finetune = [false, true]",
        "finetune = [false, true]\nrounding = [\"compensated\"]",
        1,
    );
    let err = load_str(&compensated).unwrap_err();
    assert_eq!(err.key, "grid.rounding", "{err}");
    assert!(err.to_string().contains("torchscript"), "{err}");
}

fn with_rounding(extra: &str) -> String {
    BASE.replacen(
        "method = [\"none\", \"kmeans\", \"ecsq\"]",
        "method = [\"none\", \"kmeans\", \"ecsq\", \"universal\"]",
        1,
    )
    .replacen(
        "finetune = [false, true]",
        &format!("finetune = [false, true]\nrounding = [\"nearest\", \"compensated\"]{extra}"),
        1,
    )
}

#[test]
fn compensated_rounding_multiplies_the_quantizers_with_a_codebook_only() {
    let g = load_str(&with_rounding("")).unwrap();
    // per seed and pruning: none 1; kmeans 16 and ecsq 8, each in two
    // roundings; universal (dithered values) 16, nearest only
    assert_eq!(g.cells.len(), 2 * 2 * (1 + 2 * 16 + 2 * 8 + 16));
    let cell = |g: &Grid, id: &str| g.cells.iter().find(|c| c.id == id).unwrap().clone();
    let id = "s0.paper.kmeans.k8.hessian.global.huffman.ft";
    let comp = cell(&g, &format!("{id}.comp"));
    assert_eq!(
        comp.rounding,
        Some(CompensationSpec {
            samples: 1024,
            damping: 0.01,
            act_order: false,
            sequential: false,
        })
    );
    assert_eq!(cell(&g, id).rounding, None);
    assert!(g
        .cells
        .iter()
        .filter(|c| c.id.contains(".comp"))
        .all(|c| matches!(
            c.method,
            MethodSpec::Kmeans { .. } | MethodSpec::Ecsq { .. }
        )));

    // nearest rounding keeps the keys it always had; compensated rounding
    // shares everything up to the quantized network
    let base = load_str(BASE).unwrap();
    let nearest = cell_keys(&g, &cell(&g, id));
    assert_eq!(nearest, cell_keys(&base, &cell(&base, id)));
    let compensated = cell_keys(&g, &comp);
    assert_eq!(compensated.importance, nearest.importance);
    assert_ne!(compensated.quantized, nearest.quantized);

    // its settings change only the compensated cells' keys
    let g2 = load_str(&with_rounding("\n\n[compensation]\nsamples = 512")).unwrap();
    assert_eq!(cell_keys(&g2, &cell(&g2, id)), nearest);
    let comp2 = cell(&g2, &format!("{id}.comp"));
    assert_eq!(comp2.rounding.map(|r| r.samples), Some(512));
    assert_ne!(cell_keys(&g2, &comp2).quantized, compensated.quantized);
}

#[test]
fn every_compensated_rounding_has_its_cells_ids_and_keys() {
    let all = "\"compensated\", \"compensated-act-order\", \"compensated-sequential\", \
               \"compensated-sequential-act-order\"]";
    let g = load_str(&with_rounding("").replacen("\"compensated\"]", all, 1)).unwrap();
    let id = "s0.paper.kmeans.k8.hessian.global.huffman.ft";
    let mut quantized = BTreeSet::new();
    for (suffix, name) in [
        ("comp", "compensated"),
        ("comp-act", "compensated-act-order"),
        ("comp-seq", "compensated-sequential"),
        ("comp-seq-act", "compensated-sequential-act-order"),
    ] {
        let c = g
            .cells
            .iter()
            .find(|c| c.id == format!("{id}.{suffix}"))
            .unwrap();
        assert_eq!(c.rounding.map(|r| r.name()), Some(name));
        quantized.insert(cell_keys(&g, c).quantized);
    }
    assert_eq!(quantized.len(), 4);
}

#[test]
fn act_order_is_a_third_rounding_with_keys_of_its_own() {
    let g = load_str(&with_rounding("").replacen(
        "\"compensated\"]",
        "\"compensated\", \"compensated-act-order\"]",
        1,
    ))
    .unwrap();
    assert_eq!(g.cells.len(), 2 * 2 * (1 + 3 * 16 + 3 * 8 + 16));
    let cell = |id: &str| g.cells.iter().find(|c| c.id == id).unwrap().clone();
    let id = "s0.paper.kmeans.k8.hessian.global.huffman.ft";
    let act = cell(&format!("{id}.comp-act"));
    let own = cell(&format!("{id}.comp"));
    assert_eq!(
        act.rounding.map(|r| (r.act_order, r.name())),
        Some((true, "compensated-act-order"))
    );
    assert_eq!(own.rounding.map(|r| r.name()), Some("compensated"));
    // the own order's key is the one it had before act-order existed
    let two = load_str(&with_rounding("")).unwrap();
    let own_before = two.cells.iter().find(|c| c.id == own.id).unwrap();
    assert_eq!(cell_keys(&g, &own), cell_keys(&two, own_before));
    assert_ne!(cell_keys(&g, &act).quantized, cell_keys(&g, &own).quantized);
    assert_eq!(
        cell_keys(&g, &act).importance,
        cell_keys(&g, &own).importance
    );
}

#[test]
fn rounding_mistakes_name_their_key() {
    let err = |source: String| load_str(&source).unwrap_err();
    let e = err(BASE.replacen(
        "finetune = [false, true]",
        "finetune = [false, true]\nrounding = [\"gptq\"]",
        1,
    ));
    assert_eq!(e.key, "grid.rounding", "{e}");
    assert!(e.message.contains("nearest, compensated"), "{e}");
    // the [compensation] table goes above [grid]
    let table =
        |body: &str| BASE.replacen("[grid]", &format!("[compensation]\n{body}\n\n[grid]"), 1);
    let e = err(table("damping = -0.5"));
    assert_eq!(e.key, "compensation.damping", "{e}");
    let e = err(table("samples = 0"));
    assert_eq!(e.key, "compensation.samples", "{e}");
    let e = err(table("sample = 10"));
    assert!(e.to_string().contains("unknown field"), "{e}");
}

fn with_quantizer_seeds(seeds: &str) -> String {
    BASE.replacen(
        "method = [\"none\", \"kmeans\", \"ecsq\"]",
        "method = [\"none\", \"kmeans\", \"ecsq\", \"universal\"]",
        1,
    )
    .replacen(
        "finetune = [false, true]",
        &format!("finetune = [false, true]\nquantizer_seed = {seeds}"),
        1,
    )
}

#[test]
fn quantizer_seeds_multiply_only_the_quantizers_that_draw() {
    let g = load_str(&with_quantizer_seeds("[7, 8, 9]")).unwrap();
    // per seed and pruning: none 1; kmeans (k-means++) 16 and universal 16,
    // each 3 quantizer seeds; ecsq (uniform initial codebook) 8, once
    assert_eq!(g.cells.len(), 2 * 2 * (1 + 3 * 16 + 8 + 3 * 16));
    let cell = |g: &Grid, id: &str| g.cells.iter().find(|c| c.id == id).unwrap().clone();
    let id = "s1.paper.kmeans.k8.hessian.global.huffman.ft";
    let drawn = cell(&g, &format!("{id}.q8"));
    assert_eq!((drawn.seed, drawn.quantizer_seed), (1, Some(8)));
    assert_eq!(drawn.quantizer_draws(), 8);
    let ecsq = cell(&g, "s1.paper.ecsq.l0.1.hessian.global.huffman.ft");
    assert_eq!((ecsq.quantizer_seed, ecsq.quantizer_draws()), (None, 1));
    assert!(g
        .cells
        .iter()
        .filter(|c| c.quantizer_seed.is_some())
        .all(|c| matches!(
            c.method,
            MethodSpec::Kmeans { .. } | MethodSpec::Universal { .. }
        )));

    // a quantizer seed changes the quantized network's key, not the
    // importance's; cells without one keep the keys they always had
    let base = load_str(BASE).unwrap();
    let ecsq_base = cell(&base, "s1.paper.ecsq.l0.1.hessian.global.huffman.ft");
    assert_eq!(cell_keys(&g, &ecsq), cell_keys(&base, &ecsq_base));
    let by_training_seed = cell_keys(&base, &cell(&base, id));
    let keys: Vec<_> = [7, 8, 9]
        .iter()
        .map(|q| cell_keys(&g, &cell(&g, &format!("{id}.q{q}"))))
        .collect();
    for k in &keys {
        assert_eq!(k.importance, by_training_seed.importance);
        assert_ne!(k.quantized, by_training_seed.quantized);
    }
    assert_ne!(keys[0].quantized, keys[1].quantized);
    assert_ne!(keys[1].quantized, keys[2].quantized);
}

#[test]
fn quantizer_seed_mistakes_name_their_key() {
    let err = |source: String| load_str(&source).unwrap_err();
    let e = err(with_quantizer_seeds("[1, 1]"));
    assert_eq!(e.key, "grid.quantizer_seed", "{e}");
    assert!(e.message.contains("twice"), "{e}");
    let e = err(with_quantizer_seeds("[]"));
    assert_eq!(e.key, "grid.quantizer_seed", "{e}");
    // nothing draws: ECSQ alone, or k-means from a fixed initial codebook
    let e = err(BASE
        .replacen(
            "method = [\"none\", \"kmeans\", \"ecsq\"]",
            "method = [\"ecsq\"]",
            1,
        )
        .replacen("k = [4, 8]\n", "", 1)
        .replacen("finetune = [false, true]", "quantizer_seed = [0, 1]", 1));
    assert_eq!(e.key, "grid.quantizer_seed", "{e}");
    assert!(e.message.contains("draws anything"), "{e}");
    let e = err(with_quantizer_seeds("[0, 1]")
        .replacen(
            "[grid]",
            "[quantizer]\nkmeans_init = \"linear\"\n\n[grid]",
            1,
        )
        .replacen(", \"universal\"]", "]", 1));
    assert_eq!(e.key, "grid.quantizer_seed", "{e}");
    // a search judges its points by their mean over the training seeds
    let searched = searched_grid().replacen("[grid]\n", "[grid]\nquantizer_seed = [0, 1]\n", 1);
    let e = err(searched);
    assert_eq!(e.key, "grid.quantizer_seed", "{e}");
    assert!(e.message.contains("[search]"), "{e}");
}

#[test]
fn a_row_is_told_what_fine_tuning_trains() {
    let trains = |extra: &str| {
        let g = load_str(&BASE.replacen("lr = 1e-4", &format!("lr = 1e-4\n{extra}"), 1)).unwrap();
        let spec = g.cells.iter().find_map(|c| c.finetune.clone()).unwrap();
        spec.trains().name()
    };
    assert_eq!(trains(""), "centres");
    assert_eq!(trains("train_biases = true"), "centres+biases");
    assert_eq!(
        trains("train_centres = false\ntrain_biases = true"),
        "biases"
    );
    assert_eq!(trains("train_centres = false"), "statistics");
}
