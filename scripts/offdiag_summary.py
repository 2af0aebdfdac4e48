"""Summarises `nq-exp offdiag` runs over training seeds (scripts/offdiag_seeds.sh): per layer
set and block, each statistic of the JSON summaries as mean ± sample std over the seeds; where a
layer set has both blocks, the exact Hessian's quadratic forms against the Gauss-Newton ones on
the same quantizations (from the CSV rows).

Usage: python3 scripts/offdiag_summary.py DIR > DIR/summary.md, with DIR holding
<name>_<block>_s<seed>.json files."""

import csv
import glob
import json
import os
import re
import statistics
import sys


def spread(values, digits=3):
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    mean = statistics.fmean(values)
    if len(values) < 2:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {statistics.stdev(values):.{digits}f}"


NETWORKS = {"lenet5": "LeNet-5", "small-conv": "The small conv net"}


def rows_by_quantization(path):
    """The rows of one `offdiag --out` CSV by (method, k, seed, rounding)."""
    with open(path) as f:
        return {(r["method"], r["k"], r["seed"], r["rounding"]): r for r in csv.DictReader(f)}


def blocks_compared(directory, runs):
    """Per layer set with both blocks: over the quantizations that do not depend on the block
    (k-means and uniform, plain rounding: the same weights move by the same d), each seed's median
    ratio of the exact form to the Gauss-Newton form, full and each layer's own blocks."""
    lines = []
    names = sorted({name for name, _ in runs})
    for name in names:
        if (name, "hessian") not in runs or (name, "gauss-newton") not in runs:
            continue
        per_seed = {"full": [], "layerwise": [], "measured": [], "negative": []}
        for exact_path in sorted(glob.glob(os.path.join(directory, f"{name}_hessian_s*.csv"))):
            gn_path = exact_path.replace("_hessian_", "_gauss-newton_")
            if not os.path.exists(gn_path):
                continue
            exact, gn = rows_by_quantization(exact_path), rows_by_quantization(gn_path)
            keys = [key for key in exact if key in gn and key[0] in ("kmeans", "uniform")
                    and key[3] == "plain"]
            if not keys:
                continue
            ratio = lambda column: statistics.median(
                float(exact[k][column]) / float(gn[k][column]) for k in keys)
            per_seed["full"].append(ratio("full"))
            per_seed["layerwise"].append(ratio("layerwise"))
            # a negative quadratic form means the block is not positive semi-definite
            per_seed["negative"].append(
                sum(float(r["full"]) < 0 for r in exact.values() if r["rounding"] == "plain"))
            per_seed["measured"].append(max(
                abs(float(exact[k]["measured"]) - float(gn[k]["measured"])) for k in keys))
        if per_seed["full"]:
            layers = ", ".join(runs[(name, "hessian")][0]["layers"])
            lines.append(
                f"| {layers} | {len(per_seed['full'])} | {len(keys)} | "
                f"{spread(per_seed['layerwise'])} | {spread(per_seed['full'])} | "
                f"{spread(per_seed['negative'], 1)} | {max(per_seed['measured']):.1e} |")
    return lines


def main(directory):
    runs = {}
    for path in sorted(glob.glob(os.path.join(directory, "*_s[0-9]*.json"))):
        match = re.fullmatch(r"(.+)_(hessian|gauss-newton)_s(\d+)\.json", os.path.basename(path))
        if not match:
            continue
        with open(path) as f:
            runs.setdefault((match[1], match[2]), []).append(json.load(f))
    if not runs:
        sys.exit(f"{directory}: no offdiag summaries (<name>_<block>_s<seed>.json)")
    trainings = []
    for path in sorted(glob.glob(os.path.join(directory, "train_s[0-9]*.json"))):
        with open(path) as f:
            trainings.append(json.load(f))
    epochs = sorted({t["epochs"] for t in trainings})
    top1 = [100 * t["test_top1"] for t in trainings]
    training = (
        f"{' or '.join(map(str, epochs))} epochs of Adam per seed (test top-1 {spread(top1, 2)} %)"
        if trainings else "networks trained elsewhere")
    archs = sorted({s.get("arch", "lenet5") for summaries in runs.values() for s in summaries})
    network = " and ".join(NETWORKS.get(a, a) for a in archs)
    print("# Off-diagonal curvature terms over training seeds (`nq-exp offdiag`)\n")
    print(
        f"{network} on Fashion-MNIST, {training}; each layer set quantized alone "
        "(k-means, Hessian-weighted k-means over 3 k-means seeds, uniform; k = 2 to 64), the "
        "loss increase over the first 1,000 training images predicted by the diagonal "
        "`1/2 sum h_ii d_i^2`, by each layer's own block (no cross-layer terms) and by the full "
        "quadratic form `1/2 d^T H d`, against the measured one. Plain: each weight to its "
        "nearest centre; compensated: rounded again through the block (OBQ / GPTQ; left out of "
        "runs with `--no-compensation`). Every "
        "entry is mean ± sample std over the training seeds (one value per seed: the "
        "correlation or median over that seed's quantizations).\n"
    )
    header = (
        "| layers | block | weights | seeds | rounding | corr. diagonal | corr. layer blocks | "
        "corr. full | med. rel. error diagonal | med. rel. error full | "
        "off-diagonal share of the full form (median) | cross-layer share (median) |"
    )
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for (name, block), summaries in sorted(runs.items()):
        layers = ", ".join(summaries[0].get("layers", [summaries[0].get("layer")]))
        for i, rounding in enumerate(summaries[0]["roundings"]):
            rs = [s["roundings"][i] for s in summaries]
            print(
                f"| {layers} | {block} | {summaries[0]['weights']} | {len(summaries)} | "
                f"{rounding['rounding']} | "
                f"{spread([r['diagonal']['correlation'] for r in rs])} | "
                f"{spread([r.get('layerwise', r['full'])['correlation'] for r in rs])} | "
                f"{spread([r['full']['correlation'] for r in rs])} | "
                f"{spread([r['diagonal']['median_relative_error'] for r in rs], 2)} | "
                f"{spread([r['full']['median_relative_error'] for r in rs], 2)} | "
                f"{spread([r['median_off_diagonal_share'] for r in rs], 2)} | "
                f"{spread([r.get('median_cross_layer_share', 0.0) for r in rs], 2)} |"
            )
    print(
        "\n| layers | block | seeds | quantizations where compensation lowered the measured "
        "increase | compensated / plain measured increase (median) | block seconds | "
        "baseline loss |"
    )
    print("|---|---|---|---|---|---|---|")
    for (name, block), summaries in sorted(runs.items()):
        layers = ", ".join(summaries[0].get("layers", [summaries[0].get("layer")]))
        total = summaries[0]["roundings"][0]["quantizations"]
        lowered = [s["compensation_lowered"] for s in summaries]
        if all(v is None for v in lowered):
            lowered_text = ratio_text = "not run (`--no-compensation`)"
        else:
            lowered_text = f"{spread(lowered, 1)} of {total}"
            ratio_text = spread([s["median_compensated_over_plain"] for s in summaries], 2)
        print(
            f"| {layers} | {block} | {len(summaries)} | {lowered_text} | {ratio_text} | "
            f"{spread([s['block_seconds'] for s in summaries], 0)} | "
            f"{spread([s['baseline_loss'] for s in summaries], 4)} |"
        )

    print(
        "\nThe first-order term the quadratic predictors leave out, `g^T (q - w)` with `g` the "
        "gradient of the loss at the trained weights (0 only at a minimum), and the full form "
        "with it (summaries written before the term existed show -):\n"
    )
    print(
        "| layers | block | seeds | rounding | gradient norm | corr. full + gradient | "
        "med. rel. error full + gradient | first-order term / full form (median, absolute) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for (name, block), summaries in sorted(runs.items()):
        layers = ", ".join(summaries[0].get("layers", [summaries[0].get("layer")]))
        for i, rounding in enumerate(summaries[0]["roundings"]):
            rs = [s["roundings"][i] for s in summaries]
            with_gradient = [r.get("full_with_gradient") or {} for r in rs]
            print(
                f"| {layers} | {block} | {len(summaries)} | {rounding['rounding']} | "
                f"{spread([s.get('gradient_norm') for s in summaries], 4)} | "
                f"{spread([f.get('correlation') for f in with_gradient])} | "
                f"{spread([f.get('median_relative_error') for f in with_gradient], 2)} | "
                f"{spread([r.get('median_gradient_over_full') for r in rs], 2)} |"
            )

    compared = blocks_compared(directory, runs)
    if compared:
        print(
            "\nThe exact Hessian block against the Gauss-Newton block on the same quantizations "
            "(k-means and uniform, plain rounding: the same weights moved by the same amounts; "
            "Hessian-weighted k-means is left out, since each block's diagonal weights its own "
            "codebook). Per seed the median over the quantizations of the exact form over the "
            "Gauss-Newton form, then mean ± std over the seeds; the quantizations (of all methods, "
            "plain rounding) whose exact form is negative, which the positive semi-definite "
            "Gauss-Newton block never gives; the last column checks that both runs measured the "
            "same loss increases.\n"
        )
        print(
            "| layers | seeds | quantizations per seed | exact / Gauss-Newton, layers' own blocks | "
            "exact / Gauss-Newton, full form | quantizations with a negative exact form | "
            "largest difference of the measured increases |"
        )
        print("|---|---|---|---|---|---|---|")
        for line in compared:
            print(line)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "results/offdiag")
