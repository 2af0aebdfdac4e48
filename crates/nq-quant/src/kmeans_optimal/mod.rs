//! Exact weighted k-means in one dimension (paper.md 4.1, **ours**).
//!
//! Minimises `sum_i h_i (w_i - c_{a(i)})^2` over all assignments to at most
//! `k` centres, exactly. In one dimension an optimal cluster is an interval
//! of the sorted values, so with `D_m(i)` the least cost of the first `i`
//! sorted values in `m` clusters,
//!
//! ```text
//! D_1(i) = cost(0, i),   D_m(i) = min_{t < i} D_{m-1}(t) + cost(t, i),
//! ```
//!
//! where `cost(t, i)` is the within-cluster cost of positions `[t, i)`, an
//! `O(1)` difference of the f64 prefix sums of [`SortedWeights`]. This is
//! Ckmeans.1d.dp (Wang & Song, "Ckmeans.1d.dp: Optimal k-means Clustering in
//! One Dimension by Dynamic Programming", The R Journal 2011), weighted by
//! `h`. `cost` satisfies the quadrangle (Monge) inequality, so the argmin
//! `opt_m(i)` is nondecreasing in `i` and each layer is solved by divide and
//! conquer in `O(N log N)` (Grønlund, Larsen, Mathiasen, Nielsen, Schneider
//! and Song, "Fast Exact k-Means, k-Medians and Bregman Divergence
//! Clustering in 1D", 2017): the middle row is solved by a scan, and the
//! halves above and below it, which are independent, run on two threads
//! with `rayon::join`. The search for `opt_m(i)` also starts no lower than
//! `opt_{m-1}(i)`, since the breakpoints of `m - 1` and `m` clusters
//! interleave. Total time `O(k N log N)`.
//!
//! Details:
//! - equal values are merged first, so `N` above is the number of distinct
//!   values and equal weights always share a cluster; when there are at
//!   most `k` distinct values each gets its own cluster (objective 0);
//! - only two rows of `D` are kept; the last layer is needed at `i = N`
//!   only;
//! - the backtracking table holds one nondecreasing row of argmins per
//!   layer, stored in unary as a bit vector of about `2 N` bits instead of
//!   `N` `u32`: `k N / 4` bytes, 64 MB at `N = 1e6, k = 256` (1 GB as
//!   `u32`). Peak memory is that plus about `90 N` bytes (the sorted view,
//!   the merged prefix sums, two rows of `D` and of argmins): measured
//!   peak RSS 99 MB at `N = 1e6, k = 16` and 162 MB at `k = 256`.
//!
//! Rounding in the prefix sums can only make the program pick a partition
//! whose cost is within rounding of the optimum; the bounds keep every
//! result a valid partition into nonempty intervals.

mod algorithm;
mod params;
mod table;
#[cfg(test)]
mod tests;

pub use algorithm::{kmeans_optimal, kmeans_optimal_sorted};
pub use params::OptimalParams;
