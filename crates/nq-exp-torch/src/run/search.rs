//! The searches of a grid (`[search]`, [`nq_exp::search`]): each walks its
//! parameter by bisection, every point a cell per seed run like any other
//! (cached, resumable, a row each), scored by its mean task metric over the
//! seeds (top-1, or bits per character for text) against the same networks
//! unquantized, or by its mean rate against a target.

use std::collections::HashMap;

use nq_catalog::Metric;
use nq_exp::grid::spec::SearchGroup;
use nq_exp::search::quality;
use nq_report::Row;

use super::{describe, Data, Runner};

/// The task metric of each unquantized network of the grid's finished
/// cells, by seed and pruning setting.
pub(super) type References = HashMap<(u64, Option<String>), f64>;

/// The references among `rows` (the cells with `method = "none"`).
pub(super) fn references(rows: &[Row], metric: Metric) -> References {
    rows.iter()
        .filter(|r| r.method == "none")
        .filter_map(|r| Some(((r.seed, r.prune.clone()), quality(metric, r)?)))
        .collect()
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

impl Runner<'_> {
    /// Runs `group`'s search to its end, or to its first failed cell; the
    /// rows of every point tried, in order.
    pub(super) fn run_search(
        &self,
        group: &SearchGroup,
        references: &References,
        data: &anyhow::Result<Data>,
        announce: &dyn Fn(&Row),
    ) -> Vec<Row> {
        let prune = group.reference_prune().map(str::to_owned);
        let metric = self.grid.model.metric();
        let mut reference = Vec::new();
        for &seed in group.seeds.iter().filter(|_| group.goal.needs_reference()) {
            let Some(&network) = references.get(&(seed, prune.clone())) else {
                let mut row = Row {
                    status: "failed".into(),
                    error: Some(format!(
                        "search {}: the unquantized network of seed {seed} has no {} (its \
                         cell failed), so the search has no reference",
                        group.id,
                        metric.name()
                    )),
                    ..Row::default()
                };
                describe(self.grid, &group.template, &mut row);
                self.provenance.stamp(&mut row);
                row.search = Some(group.id.clone());
                announce(&row);
                return vec![row];
            };
            reference.push(network);
        }
        let reference = if reference.is_empty() {
            f64::NAN
        } else {
            mean(&reference)
        };
        let mut search = group.goal.start(group.space, metric, reference);
        let mut rows = Vec::new();
        while let Some(value) = search.next() {
            let step = search.tried().len() as u64;
            self.progress.inc_length(group.seeds.len() as u64);
            let mark = |row: &mut Row| {
                row.search = Some(group.id.clone());
                row.search_step = Some(step);
                group.goal.mark(row, reference);
            };
            let mut scores = Vec::new();
            for &seed in &group.seeds {
                let row = self.run_cell(&group.cell(seed, value), data, &mark);
                announce(&row);
                if let Some(measured) = (row.status == "ok")
                    .then(|| group.goal.measure(metric, &row))
                    .flatten()
                {
                    scores.push(measured);
                }
                rows.push(row);
            }
            if scores.len() < group.seeds.len() {
                break; // a failed point: its rows say why, and the search stops there
            }
            search.record(value, group.goal.score(metric, mean(&scores)));
        }
        rows
    }
}
