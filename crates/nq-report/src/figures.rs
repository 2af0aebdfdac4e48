//! Figures from the results alone (design.md, "Figures"), drawn with
//! plotters as SVG and PNG: accuracy against average codeword length in the
//! four panels of the paper's Figure 1, importance estimators against each
//! other (Figure 2), layer against global codebooks, sensitivity to `k` and
//! to `lambda`, and accuracy against compression ratio with its Pareto
//! front. Each is drawn only when the grid has the axes it compares.

use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;

use nq_catalog::Metric;

use crate::error::{ReportError, Result};
use crate::markdown::{method_label, metric_of, setting_label};
use crate::summary::{distinct, Setting};

/// One curve or point set.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend entry.
    pub label: String,
    /// Points, drawn in increasing x.
    pub points: Vec<(f64, f64)>,
    /// The sample standard deviation of each point's y over seeds (0 with
    /// one seed), drawn as an error bar of one standard deviation.
    pub errors: Vec<f64>,
    /// Whether the points are joined by a line.
    pub line: bool,
    /// Whether the standard deviations are drawn as a shaded band around
    /// the line instead of error bars.
    pub band: bool,
}

/// One panel of a figure.
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    /// Its caption.
    pub title: String,
    /// Its series.
    pub series: Vec<Series>,
}

/// A figure: panels sharing axis labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    /// File stem (`accuracy_vs_codeword`).
    pub name: String,
    /// Title above the panels.
    pub title: String,
    /// Horizontal axis label.
    pub x_label: String,
    /// Vertical axis label.
    pub y_label: String,
    /// What the vertical axis measures: which way is better, for the zoom
    /// and the Pareto front.
    pub metric: Metric,
    /// Logarithmic horizontal axis.
    pub log_x: bool,
    /// The legend in the lower left corner (else lower right): where the
    /// curves leave room.
    pub legend_lower_left: bool,
    /// Panels, laid out one, two side by side, or two by two.
    pub panels: Vec<Panel>,
}

const FONT: &str = "sans-serif";

/// Series colours: the ten of matplotlib's `tab10`, distinct in print and
/// for the common colour-vision deficiencies.
const COLOURS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

fn register_font() {
    static FONT_ONCE: Once = Once::new();
    FONT_ONCE.call_once(|| {
        // the PNG backend draws text with this font; DejaVu Sans is
        // embedded so that figures do not depend on the system's fonts
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular());
    });
}

fn bounds(values: impl Iterator<Item = f64> + Clone) -> (f64, f64) {
    let lo = values.clone().fold(f64::INFINITY, f64::min);
    let hi = values.fold(f64::NEG_INFINITY, f64::max);
    if !lo.is_finite() || !hi.is_finite() {
        return (0.0, 1.0);
    }
    let pad = if hi > lo { 0.06 * (hi - lo) } else { 0.5 };
    (lo - pad, hi + pad)
}

/// Share of a panel's vertical range added below its lowest point per
/// legend entry, so that the legend covers no point.
const LEGEND_ROOM_PER_ENTRY: f64 = 0.09;

/// The vertical range of `panel`: its points with their error bars, and
/// room below them for the legend, which sits in a lower corner; an axis
/// of values that are never negative (accuracy, bits) stops at 0.
fn y_range(panel: &Panel) -> (f64, f64) {
    let bar_ends = || {
        panel.series.iter().flat_map(|s| {
            s.points.iter().enumerate().flat_map(move |(i, p)| {
                let bar = s.errors.get(i).copied().unwrap_or(0.0);
                [p.1 - bar, p.1 + bar]
            })
        })
    };
    let (y0, y1) = bounds(bar_ends());
    let entries = panel.series.iter().filter(|s| !s.points.is_empty()).count() as f64;
    let y0 = y0 - (LEGEND_ROOM_PER_ENTRY * entries).min(0.9) * (y1 - y0);
    if bar_ends().all(|y| y >= 0.0) {
        (y0.max(0.0), y1)
    } else {
        (y0, y1)
    }
}

/// Decimals for the ticks of a linear axis over `lo..hi`: at least `min`,
/// and enough to tell apart ticks a tenth of the range apart (a zoomed
/// panel may span a hundredth of a bit, where two decimals repeat).
fn linear_decimals(lo: f64, hi: f64, min: usize) -> usize {
    let step = (hi - lo) / 10.0;
    if !(step.is_finite() && step > 0.0) {
        return min;
    }
    // the tolerance keeps 0.0099999 (2.94 - 2.93) at 0.01
    ((-step.log10() - 1e-6).ceil().max(0.0) as usize).clamp(min, 6)
}

/// `v` with 3 significant digits and no trailing zeros: a log axis's ticks.
fn significant(v: f64) -> String {
    let decimals = (2 - v.abs().log10().floor() as i32).max(0) as usize;
    let text = format!("{v:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

/// Ticks of a log10 axis over `lo..=hi` (in log10 units) at round numbers:
/// 1, 2 and 5 times the powers of ten, fewer when they are more than
/// `max`, every digit within a decade. Evenly spaced ticks in log units
/// would fall at 3.16 and 6.31, which no grid sweeps.
fn log_ticks(lo: f64, hi: f64, max: usize) -> Vec<f64> {
    let in_range = |mantissas: &[f64]| -> Vec<f64> {
        (lo.floor() as i32..=hi.ceil() as i32)
            .flat_map(|d| mantissas.iter().map(move |m| (m * 10f64.powi(d)).log10()))
            .filter(|t| (lo - 1e-9..=hi + 1e-9).contains(t))
            .collect()
    };
    let digits: Vec<f64> = (1..=9).map(f64::from).collect();
    for mantissas in [&digits[..], &[1.0, 2.0, 5.0], &[1.0, 3.0]] {
        let ticks = in_range(mantissas);
        if ticks.len() <= max {
            return ticks;
        }
    }
    in_range(&[1.0])
}

/// The x axis: plotters' own, with [`log_ticks`] when it is in log10
/// units.
struct XAxis {
    inner: RangedCoordf64,
    log: bool,
}

impl Ranged for XAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.inner.map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if self.log {
            let range = self.inner.range();
            log_ticks(range.start, range.end, hint.max_num_points())
        } else {
            self.inner.key_points(hint)
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.inner.range()
    }
}

fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, fig: &Figure) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(e)?;
    let area = root.titled(&fig.title, (FONT, 20)).map_err(e)?;
    let layout = match fig.panels.len() {
        1 => (1, 1),
        2 => (1, 2),
        _ => (fig.panels.len().div_ceil(2), 2),
    };
    let to_x = |x: f64| if fig.log_x { x.log10() } else { x };
    let bar = |s: &Series, i: usize| s.errors.get(i).copied().unwrap_or(0.0);
    // the same series label has the same colour in every panel, empty
    // series counted, so a zoomed copy keeps the colours of its figure
    let mut labels: Vec<&str> = Vec::new();
    for s in fig.panels.iter().flat_map(|p| &p.series) {
        if !labels.contains(&s.label.as_str()) {
            labels.push(&s.label);
        }
    }
    for (cell, panel) in area.split_evenly(layout).iter().zip(&fig.panels) {
        let points = || panel.series.iter().flat_map(|s| s.points.iter());
        let (x0, x1) = bounds(points().map(|p| to_x(p.0)));
        let (y0, y1) = y_range(panel);
        let x_axis = XAxis {
            inner: (x0..x1).into(),
            log: fig.log_x,
        };
        let mut chart = ChartBuilder::on(cell)
            .caption(&panel.title, (FONT, 18))
            .margin(12)
            .x_label_area_size(45)
            .y_label_area_size(60)
            .build_cartesian_2d(x_axis, y0..y1)
            .map_err(e)?;
        let (x_decimals, y_decimals) = (linear_decimals(x0, x1, 2), linear_decimals(y0, y1, 1));
        let x_format = |v: &f64| {
            if fig.log_x {
                significant(10f64.powf(*v))
            } else {
                format!("{v:.x_decimals$}")
            }
        };
        chart
            .configure_mesh()
            .x_desc(&fig.x_label)
            .y_desc(&fig.y_label)
            .x_label_formatter(&x_format)
            .y_label_formatter(&|v| format!("{v:.y_decimals$}"))
            .label_style((FONT, 14))
            .axis_desc_style((FONT, 15))
            .draw()
            .map_err(e)?;
        for s in panel.series.iter().filter(|s| !s.points.is_empty()) {
            let colour_index = labels.iter().position(|l| *l == s.label).unwrap_or(0);
            let colour = COLOURS[colour_index % COLOURS.len()].to_rgba();
            let mut pts: Vec<(f64, f64, f64)> = s
                .points
                .iter()
                .enumerate()
                .map(|(i, &(x, y))| (to_x(x), y, bar(s, i)))
                .collect();
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            let style = colour.stroke_width(2);
            if s.band && pts.iter().any(|p| p.2 > 0.0) {
                let upper = pts.iter().map(|p| (p.0, p.1 + p.2));
                let lower = pts.iter().rev().map(|p| (p.0, p.1 - p.2));
                chart
                    .draw_series(std::iter::once(Polygon::new(
                        upper.chain(lower).collect::<Vec<_>>(),
                        colour.mix(0.2).filled(),
                    )))
                    .map_err(e)?;
            }
            if s.line {
                chart
                    .draw_series(LineSeries::new(pts.iter().map(|p| (p.0, p.1)), style))
                    .map_err(e)?;
            }
            chart
                .draw_series(
                    pts.iter()
                        .filter(|p| !s.band && p.2 > 0.0)
                        .map(|&(x, y, err)| {
                            PathElement::new(
                                vec![(x, y - err), (x, y + err)],
                                colour.stroke_width(1),
                            )
                        }),
                )
                .map_err(e)?;
            let pts: Vec<(f64, f64)> = pts.iter().map(|p| (p.0, p.1)).collect();
            // past the palette's ten colours, the marker tells series apart
            let marker = colour_index / COLOURS.len();
            let points = pts
                .iter()
                .map(move |&p| -> DynElement<'static, DB, (f64, f64)> {
                    match marker {
                        0 => Circle::new(p, 3, colour.filled()).into_dyn(),
                        1 => TriangleMarker::new(p, 5, colour.filled()).into_dyn(),
                        _ => Cross::new(p, 4, colour.stroke_width(2)).into_dyn(),
                    }
                });
            chart
                .draw_series(points)
                .map_err(e)?
                .label(&s.label)
                .legend(move |(x, y)| -> DynElement<'static, DB, (i32, i32)> {
                    match marker {
                        0 => PathElement::new(vec![(x, y), (x + 18, y)], style).into_dyn(),
                        1 => TriangleMarker::new((x + 9, y), 5, colour.filled()).into_dyn(),
                        _ => Cross::new((x + 9, y), 4, colour.stroke_width(2)).into_dyn(),
                    }
                });
        }
        chart
            .configure_series_labels()
            .label_font((FONT, 13))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(if fig.legend_lower_left {
                SeriesLabelPosition::LowerLeft
            } else {
                SeriesLabelPosition::LowerRight
            })
            .draw()
            .map_err(e)?;
    }
    root.present().map_err(e)
}

/// Writes `fig` as `dir/<name>.svg` and `dir/<name>.png`; returns the two
/// paths.
pub fn write_figure(fig: &Figure, dir: &Path) -> Result<Vec<PathBuf>> {
    register_font();
    std::fs::create_dir_all(dir).map_err(crate::error::io(dir))?;
    let size = match fig.panels.len() {
        1 => (900, 620),
        2 => (1260, 510),
        n => (1260, n.div_ceil(2) as u32 * 460 + 50),
    };
    let fail = |path: &Path| {
        let path = path.to_owned();
        move |message: String| ReportError::Figure { path, message }
    };
    let svg = dir.join(format!("{}.svg", fig.name));
    draw(&SVGBackend::new(&svg, size).into_drawing_area(), fig).map_err(fail(&svg))?;
    let png = dir.join(format!("{}.png", fig.name));
    draw(&BitMapBackend::new(&png, size).into_drawing_area(), fig).map_err(fail(&png))?;
    Ok(vec![svg, png])
}

/// Which of a figure's settings vary, so labels name only what differs.
struct Varies {
    prune: bool,
    scope: bool,
    coding: bool,
    finetuned: bool,
}

impl Varies {
    fn of(settings: &[&Setting]) -> Self {
        fn differ<T: PartialEq>(s: &[&Setting], f: impl Fn(&Setting) -> T) -> bool {
            s.windows(2).any(|w| f(w[0]) != f(w[1]))
        }
        Self {
            prune: differ(settings, |s| s.prune.clone()),
            scope: differ(settings, |s| s.scope.clone()),
            coding: differ(settings, |s| s.coding.clone()),
            finetuned: differ(settings, Setting::finetune_words),
        }
    }

    fn label(&self, s: &Setting) -> String {
        let mut label = setting_label(s);
        if self.prune {
            label += &format!(", prune {}", s.prune.as_deref().unwrap_or("none"));
        }
        if self.scope {
            label += &format!(", {}", s.scope.as_deref().unwrap_or("-"));
        }
        if self.coding {
            label += &format!(", {}", s.coding.as_deref().unwrap_or("-"));
        }
        if self.finetuned {
            label += &format!(", {}", s.finetune_words().unwrap_or("not fine-tuned"));
        }
        label
    }
}

/// Series of `settings` grouped by label, each point `point(setting)`
/// with the standard deviation of its task metric over the seeds.
fn series(
    settings: &[&Setting],
    varies: &Varies,
    line: bool,
    point: impl Fn(&Setting) -> Option<(f64, f64)>,
) -> Vec<Series> {
    series_spread(settings, varies, line, point, |s| s.quality.std)
}

/// [`series`] with each point's spread `spread(setting)` (0 where `None`).
fn series_spread(
    settings: &[&Setting],
    varies: &Varies,
    line: bool,
    point: impl Fn(&Setting) -> Option<(f64, f64)>,
    spread: impl Fn(&Setting) -> Option<f64>,
) -> Vec<Series> {
    let mut out: Vec<Series> = Vec::new();
    for s in settings {
        let Some(p) = point(s) else { continue };
        let label = varies.label(s);
        let error = spread(s).unwrap_or(0.0);
        match out.iter_mut().find(|x| x.label == label) {
            Some(x) => {
                x.points.push(p);
                x.errors.push(error);
            }
            None => out.push(Series {
                label,
                points: vec![p],
                errors: vec![error],
                line,
                band: false,
            }),
        }
    }
    out
}

/// The panels of a sensitivity figure, the task metric against `x`, with
/// the spread over seeds as bands: one panel titled `title`, or, where the
/// grid ran the quantizer with seeds of its own, one panel per source of
/// the spread (a quantizer that draws nothing spreads by 0 over them).
fn sensitivity_panels(
    settings: &[&Setting],
    title: &str,
    x: impl Fn(&Setting) -> Option<f64> + Copy,
) -> Vec<Panel> {
    let varies = Varies::of(settings);
    let point = |s: &Setting| Some((x(s)?, s.quality.mean?));
    let banded = |mut series: Vec<Series>| {
        for s in &mut series {
            s.band = true;
        }
        series
    };
    if !settings.iter().any(|s| s.seed_sources.is_some()) {
        return vec![Panel {
            title: title.to_owned(),
            series: banded(series(settings, &varies, true, point)),
        }];
    }
    let over_training = |s: &Setting| match s.seed_sources {
        Some(src) => src.over_training,
        None => s.quality.std,
    };
    let over_quantizer = |s: &Setting| match s.seed_sources {
        Some(src) => src.over_quantizer,
        None => Some(0.0),
    };
    vec![
        Panel {
            title: format!("{title}: spread over training seeds"),
            series: banded(series_spread(settings, &varies, true, point, over_training)),
        },
        Panel {
            title: format!("{title}: spread over quantizer seeds"),
            series: banded(series_spread(
                settings,
                &varies,
                true,
                point,
                over_quantizer,
            )),
        },
    ]
}

/// `fig` with each panel's vertical axis cut to `window` (in the figure's
/// metric) worse than its best point: where the methods differ, close to
/// the baseline. Points beyond are left out, and the title says so; a
/// series left with none stays, empty, so that every series keeps the
/// colour it has in `fig` (an empty one is neither drawn nor in the
/// legend).
pub fn zoomed(fig: &Figure, window: f64) -> Figure {
    let metric = fig.metric;
    let panels = fig
        .panels
        .iter()
        .map(|panel| {
            let best = panel
                .series
                .iter()
                .flat_map(|s| s.points.iter().map(|p| metric.score(p.1)))
                .fold(f64::NEG_INFINITY, f64::max);
            let series = panel
                .series
                .iter()
                .map(|s| {
                    let keep: Vec<usize> = (0..s.points.len())
                        .filter(|&i| metric.score(s.points[i].1) >= best - window)
                        .collect();
                    Series {
                        points: keep.iter().map(|&i| s.points[i]).collect(),
                        errors: keep
                            .iter()
                            .map(|&i| s.errors.get(i).copied().unwrap_or(0.0))
                            .collect(),
                        ..s.clone()
                    }
                })
                .collect();
            Panel {
                title: panel.title.clone(),
                series,
            }
        })
        .collect();
    Figure {
        name: format!("{}_zoom", fig.name),
        title: format!(
            "{} (within {window} {} of the best)",
            fig.title,
            match metric {
                Metric::Top1 => "points",
                Metric::BitsPerCharacter => "bits",
            }
        ),
        panels,
        ..fig.clone()
    }
}

/// How far below the best point the zoomed figures reach, in points of
/// top-1: the paper's Figure 1 spans about the same below its baseline.
pub const ZOOM_WINDOW: f64 = 5.0;

/// The same for a language model, in bits per character: a tenth of the
/// character-level GPT's 2.45 bits, as 5 points are of LeNet's accuracy.
pub const ZOOM_WINDOW_BITS: f64 = 0.25;

fn zoom_window(metric: Metric) -> f64 {
    match metric {
        Metric::Top1 => ZOOM_WINDOW,
        Metric::BitsPerCharacter => ZOOM_WINDOW_BITS,
    }
}

/// The vertical axis of a metric.
fn axis_label(metric: Metric) -> &'static str {
    match metric {
        Metric::Top1 => "top-1 accuracy (%)",
        Metric::BitsPerCharacter => "test cross-entropy (bits per character)",
    }
}

fn bits_quality(s: &Setting) -> Option<(f64, f64)> {
    Some((s.bits.mean?, s.quality.mean?))
}

/// Panels of `quantized` split by `key`, titled by `title`, each with its
/// series of accuracy against codeword length.
fn panels_by<T: PartialEq>(
    quantized: &[&Setting],
    key: impl Fn(&Setting) -> T,
    title: impl Fn(&T) -> String,
) -> Vec<Panel> {
    distinct(quantized, &key)
        .into_iter()
        .map(|k| {
            let members: Vec<&Setting> =
                quantized.iter().copied().filter(|s| key(s) == k).collect();
            let varies = Varies::of(&members);
            Panel {
                title: title(&k),
                series: series(&members, &varies, true, bits_quality),
            }
        })
        .collect()
}

/// The figures the settings of one grid support.
pub fn figures(grid: &str, settings: &[Setting]) -> Vec<Figure> {
    let quantized: Vec<&Setting> = settings.iter().filter(|s| s.method != "none").collect();
    if quantized.is_empty() {
        return Vec::new();
    }
    let metric = metric_of(&quantized);
    // accuracy rises with the bits spent, and the lower right is empty; a
    // loss falls with them, and the lower left is
    let lower_left_is_free = !metric.higher_is_better();
    let figure = |name: &str, title: &str, x: &str, log_x: bool, panels: Vec<Panel>| Figure {
        name: name.into(),
        title: format!("{grid}: {title}"),
        x_label: x.into(),
        y_label: axis_label(metric).into(),
        metric,
        log_x,
        legend_lower_left: lower_left_is_free,
        panels,
    };
    let bits = "average codeword length (bits per weight)";
    let mut out = Vec::new();

    // Figure 1: coding x fine-tuning panels, in the paper's order (one row
    // per coding, fine-tuned on the right), context coding after its two
    let mut panel_order = distinct(&quantized, |s| (s.coding.clone(), s.finetune_words()));
    let rank = |coding: &Option<String>| match coding.as_deref() {
        Some("fixed") => 0,
        Some("huffman") => 1,
        Some("context") => 2,
        _ => 3,
    };
    panel_order.sort_by_key(|(c, words)| (rank(c), words.is_some()));
    let fig1_panels: Vec<Panel> = panel_order
        .iter()
        .filter_map(|(coding, words)| {
            let members: Vec<&Setting> = quantized
                .iter()
                .copied()
                .filter(|s| &s.coding == coding && s.finetune_words() == *words)
                .collect();
            let varies = Varies {
                coding: false,
                finetuned: false,
                ..Varies::of(&members)
            };
            let series = series(&members, &varies, true, bits_quality);
            let title = format!(
                "{} coding{}",
                coding.as_deref().unwrap_or("-"),
                words.map_or(String::new(), |w| format!(", {w}"))
            );
            (!series.is_empty()).then_some(Panel { title, series })
        })
        .collect();
    if !fig1_panels.is_empty() {
        let fig = figure(
            "accuracy_vs_codeword",
            "accuracy against average codeword length",
            bits,
            false,
            fig1_panels,
        );
        out.push(zoomed(&fig, zoom_window(metric)));
        out.push(fig);
    }

    // Figure 2: importance estimators, a panel per method; the legend names
    // the weightings (often only none and the Hessian, so the title
    // promises no more)
    if distinct(&quantized, |s| s.weighting.clone()).len() > 1 {
        let panels = panels_by(&quantized, |s| s.method.clone(), |m| method_label(m, None));
        let fig = figure("importance", "weightings compared", bits, false, panels);
        out.push(zoomed(&fig, zoom_window(metric)));
        out.push(fig);
    }

    // nearest against compensated rounding, a panel per quantizer
    if distinct(&quantized, |s| s.rounding.clone()).len() > 1 {
        let panels = panels_by(
            &quantized,
            |s| (s.method.clone(), s.weighting.clone()),
            |(m, w)| method_label(m, w.as_deref()),
        );
        let fig = figure(
            "rounding",
            "nearest against compensated rounding",
            bits,
            false,
            panels,
        );
        out.push(zoomed(&fig, zoom_window(metric)));
        out.push(fig);
    }

    // layer against global, a panel per method (and pruning, with several)
    if distinct(&quantized, |s| s.scope.clone()).len() > 1 {
        let panels = if Varies::of(&quantized).prune {
            panels_by(
                &quantized,
                |s| (s.prune.clone(), s.method.clone()),
                |(p, m)| {
                    format!(
                        "{}, pruned {}",
                        method_label(m, None),
                        p.as_deref().unwrap_or("none")
                    )
                },
            )
        } else {
            panels_by(&quantized, |s| s.method.clone(), |m| method_label(m, None))
        };
        out.push(figure(
            "layer_vs_global",
            "layer-by-layer against global codebooks",
            bits,
            false,
            panels,
        ));
    }

    // sensitivity to k and to lambda
    let with_k: Vec<&Setting> = quantized
        .iter()
        .copied()
        .filter(|s| s.k.is_some())
        .collect();
    if distinct(&with_k, |s| s.k).len() > 1 {
        let fig = figure(
            "sensitivity_k",
            "sensitivity to k",
            "k (clusters)",
            true,
            sensitivity_panels(&with_k, "k-means and uniform", |s| Some(s.k? as f64)),
        );
        out.push(zoomed(&fig, zoom_window(metric)));
        out.push(fig);
    }
    let with_lambda: Vec<&Setting> = quantized
        .iter()
        .copied()
        .filter(|s| s.lambda.is_some())
        .collect();
    if distinct(&with_lambda, |s| s.lambda.map(f64::to_bits)).len() > 1 {
        let fig = figure(
            "sensitivity_lambda",
            "sensitivity to lambda",
            "lambda",
            true,
            sensitivity_panels(&with_lambda, "ECSQ", |s| s.lambda),
        );
        out.push(zoomed(&fig, zoom_window(metric)));
        out.push(fig);
    }

    // accuracy against compression ratio: with several prunings, a panel
    // per quantizer and coding with a series per pruning and the panel's
    // own Pareto front (one legend entry per series would not fit)
    if Varies::of(&quantized).prune {
        let fig = Figure {
            legend_lower_left: !lower_left_is_free,
            ..figure(
                "accuracy_vs_ratio",
                "accuracy against compression ratio, by pruning",
                "compression ratio",
                true,
                ratio_panels_by_pruning(&quantized, metric),
            )
        };
        out.push(zoomed(&fig, zoom_window(metric) * RATIO_ZOOM_SHARE));
        out.push(fig);
        return out;
    }
    // else one panel with every setting and the Pareto front of all
    let varies = Varies::of(&quantized);
    let mut ratio_series = series(
        settings.iter().collect::<Vec<_>>().as_slice(),
        &varies,
        false,
        |s| Some((s.ratio.mean?, s.quality.mean?)),
    );
    push_pareto_front(&mut ratio_series, metric);
    // accuracy falls as the ratio grows: the lower left is empty (a loss
    // rises, and the lower right is)
    out.push(Figure {
        legend_lower_left: !lower_left_is_free,
        ..figure(
            "accuracy_vs_ratio",
            "accuracy against compression ratio",
            "compression ratio",
            true,
            vec![Panel {
                title: "every setting".into(),
                series: ratio_series,
            }],
        )
    });
    out
}

/// How far the zoomed ratio figure reaches, as a share of the codeword
/// figures' window: searches within 0.1 point of a reference sit about a
/// point below the best, and 2 points show them.
const RATIO_ZOOM_SHARE: f64 = 0.4;

/// Accuracy against ratio, a panel per quantizer (method and weighting),
/// coding and fine-tuning, a series per pruning setting (the same colour in
/// every panel) and the panel's Pareto front.
fn ratio_panels_by_pruning(quantized: &[&Setting], metric: Metric) -> Vec<Panel> {
    let key = |s: &Setting| (setting_label(s), s.coding.clone(), s.finetune_words());
    let fine_tuning_varies = Varies::of(quantized).finetuned;
    distinct(quantized, key)
        .into_iter()
        .map(|(method, coding, finetuning)| {
            let members: Vec<&Setting> = quantized
                .iter()
                .copied()
                .filter(|s| key(s) == (method.clone(), coding.clone(), finetuning))
                .collect();
            let mut series: Vec<Series> = distinct(&members, |s| s.prune.clone())
                .into_iter()
                .map(|prune| {
                    let of_prune: Vec<&Setting> = members
                        .iter()
                        .copied()
                        .filter(|s| s.prune == prune)
                        .filter(|s| s.ratio.mean.is_some() && s.quality.mean.is_some())
                        .collect();
                    Series {
                        label: format!("pruned: {}", prune.as_deref().unwrap_or("none")),
                        points: of_prune
                            .iter()
                            .filter_map(|s| Some((s.ratio.mean?, s.quality.mean?)))
                            .collect(),
                        errors: of_prune
                            .iter()
                            .map(|s| s.quality.std.unwrap_or(0.0))
                            .collect(),
                        line: false,
                        band: false,
                    }
                })
                .filter(|s| !s.points.is_empty())
                .collect();
            push_pareto_front(&mut series, metric);
            let mut title = format!("{method}, {} coding", coding.as_deref().unwrap_or("-"));
            if let Some(words) = finetuning.filter(|_| fine_tuning_varies) {
                title += &format!(", {words}");
            }
            Panel { title, series }
        })
        .collect()
}

/// Adds to `series` (ratio, quality points) a line through the Pareto
/// front of all their points.
fn push_pareto_front(series: &mut Vec<Series>, metric: Metric) {
    let all: Vec<(f64, f64)> = series.iter().flat_map(|s| s.points.clone()).collect();
    let front = pareto_front(&all, metric);
    series.push(Series {
        label: "Pareto front".into(),
        errors: vec![0.0; front.len()],
        points: front,
        line: true,
        band: false,
    });
}

/// The points no other point beats in both coordinates (higher ratio and
/// better `metric`: higher accuracy, fewer bits), in increasing ratio.
pub fn pareto_front(points: &[(f64, f64)], metric: Metric) -> Vec<(f64, f64)> {
    // scores are higher-is-better, and the score of a score is the value
    let mut sorted: Vec<(f64, f64)> = points.iter().map(|&(x, y)| (x, metric.score(y))).collect();
    // by ratio descending, accuracy descending: a point is on the front when
    // it is more accurate than everything with a higher ratio
    sorted.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.1.total_cmp(&a.1)));
    let mut front = Vec::new();
    let mut best = f64::NEG_INFINITY;
    for p in sorted {
        if p.1 > best {
            front.push(p);
            best = p.1;
        }
    }
    front.reverse();
    front
        .into_iter()
        .map(|(x, score)| (x, metric.score(score)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::summary::Spread;

    fn at(v: f64) -> Spread {
        Spread {
            mean: Some(v),
            std: None,
        }
    }

    fn setting(method: &str, k: Option<u64>, coding: &str, ft: bool, top1: f64) -> Setting {
        Setting {
            method: method.into(),
            k,
            lambda: k.is_none().then_some(1e-3),
            coding: Some(coding.into()),
            scope: Some("layer".into()),
            finetuned: ft,
            quality: at(top1),
            bits: at(k.map_or(2.5, |k| (k as f64).log2())),
            ratio: at(32.0 / k.map_or(2.5, |k| (k as f64).log2())),
            ..Setting::default()
        }
    }

    #[test]
    fn the_importance_figure_is_drawn_where_weightings_differ_and_its_title_names_no_estimator() {
        let weighted = |w: Option<&str>, k: u64| Setting {
            weighting: w.map(Into::into),
            ..setting("kmeans", Some(k), "huffman", true, 80.0 + k as f64)
        };
        let importance = |settings: &[Setting]| {
            figures("g", settings)
                .into_iter()
                .find(|f| f.name == "importance")
        };
        let plain_and_hessian = [
            weighted(None, 4),
            weighted(None, 8),
            weighted(Some("hessian"), 4),
            weighted(Some("hessian"), 8),
        ];
        let fig = importance(&plain_and_hessian).unwrap();
        // no estimator or optimizer named that the grid may not have
        assert_eq!(fig.title, "g: weightings compared");
        let labels: Vec<&str> = fig.panels[0]
            .series
            .iter()
            .map(|s| s.label.as_str())
            .collect();
        assert_eq!(labels, ["k-means", "hessian-weighted k-means"]);
        assert!(importance(&plain_and_hessian[..2]).is_none());
    }

    #[test]
    fn sensitivity_draws_bands_one_panel_per_source_where_the_quantizer_had_seeds() {
        use crate::summary::{SeedSources, Spread};
        let setting = |method: &str, k: u64, sources: Option<SeedSources>| Setting {
            method: method.into(),
            scope: Some("global".into()),
            k: Some(k),
            quality: Spread::measured(80.0 + k as f64, 1.5),
            seed_sources: sources,
            ..Setting::default()
        };
        let sources = SeedSources {
            training_seeds: 3,
            quantizer_seeds: 3,
            over_training: Some(0.5),
            over_quantizer: Some(2.0),
        };
        let mut settings = vec![
            setting("kmeans", 4, Some(sources)),
            setting("kmeans", 8, Some(sources)),
            setting("uniform", 4, None),
            setting("uniform", 8, None),
        ];
        let sensitivity = |settings: &[Setting]| {
            figures("g", settings)
                .into_iter()
                .find(|f| f.name == "sensitivity_k")
                .unwrap()
        };
        let fig = sensitivity(&settings);
        assert_eq!(fig.panels.len(), 2);
        let errors = |panel: usize, label: &str| {
            let p = &fig.panels[panel];
            let s = p.series.iter().find(|s| s.label == label).unwrap();
            assert!(s.band && s.line);
            s.errors.clone()
        };
        assert!(fig.panels[0].title.ends_with("spread over training seeds"));
        assert_eq!(errors(0, "k-means"), vec![0.5, 0.5]);
        assert_eq!(errors(1, "k-means"), vec![2.0, 2.0]);
        // uniform draws nothing: its spread is the training seeds'
        assert_eq!(errors(0, "uniform"), vec![1.5, 1.5]);
        assert_eq!(errors(1, "uniform"), vec![0.0, 0.0]);
        // without quantizer seeds one panel, banded by the whole spread
        for s in &mut settings {
            s.seed_sources = None;
        }
        let fig = sensitivity(&settings);
        assert_eq!(fig.panels.len(), 1);
        assert!(fig.panels[0]
            .series
            .iter()
            .all(|s| s.band && s.errors == [1.5, 1.5]));
    }

    #[test]
    fn the_legend_room_stops_at_zero_for_values_that_cannot_be_negative() {
        let panel = |ys: &[f64]| Panel {
            title: String::new(),
            series: (0..6)
                .map(|_| Series {
                    label: String::new(),
                    points: ys.iter().enumerate().map(|(i, &y)| (i as f64, y)).collect(),
                    errors: vec![1.0; ys.len()],
                    line: true,
                    band: false,
                })
                .collect(),
        };
        // 10 % to 86 %: six entries' room would reach below -30
        let (lo, hi) = y_range(&panel(&[10.0, 86.0]));
        assert_eq!(lo, 0.0);
        assert!(hi > 87.0);
        // close to the top the room stays
        let (lo, _) = y_range(&panel(&[85.0, 86.0]));
        assert!(lo > 0.0 && lo < 83.0, "{lo}");
        // a difference can be negative
        let (lo, _) = y_range(&panel(&[-1.0, 2.0]));
        assert!(lo < -3.0, "{lo}");
    }

    #[test]
    fn log_ticks_fall_on_round_numbers() {
        let values = |lo: f64, hi: f64, max: usize| -> Vec<String> {
            log_ticks(lo.log10(), hi.log10(), max)
                .into_iter()
                .map(|t| significant(10f64.powf(t)))
                .collect()
        };
        // lambda from 3e-6 to 1e-2: 1, 2, 5 would be 11 ticks, so 1 and 3
        assert_eq!(
            values(3e-6, 1e-2, 10),
            ["0.000003", "0.00001", "0.00003", "0.0001", "0.0003", "0.001", "0.003", "0.01"]
        );
        assert_eq!(
            values(1.0, 100.0, 10),
            ["1", "2", "5", "10", "20", "50", "100"]
        );
        assert_eq!(
            values(1.0, 1e6, 10),
            ["1", "10", "100", "1000", "10000", "100000", "1000000"]
        );
        // within a decade, every digit
        assert_eq!(values(2.5, 8.0, 10), ["3", "4", "5", "6", "7", "8"]);
    }

    #[test]
    fn log_ticks_have_three_significant_digits() {
        assert_eq!(significant(12.589), "12.6");
        assert_eq!(significant(31.623), "31.6");
        assert_eq!(significant(100.0), "100");
        assert_eq!(significant(3162.3), "3162");
        assert_eq!(significant(0.001), "0.001");
        assert_eq!(significant(0.0031623), "0.00316");
    }

    #[test]
    fn pareto_front_keeps_the_undominated_points() {
        let pts = [
            (10.0, 99.0),
            (20.0, 98.0),
            (15.0, 97.0),
            (30.0, 90.0),
            (20.0, 98.5),
        ];
        assert_eq!(
            pareto_front(&pts, Metric::Top1),
            vec![(10.0, 99.0), (20.0, 98.5), (30.0, 90.0)]
        );
    }

    #[test]
    fn figure_one_has_the_papers_four_panels_in_order() {
        let mut settings = Vec::new();
        for coding in ["huffman", "fixed"] {
            for ft in [true, false] {
                for k in [4, 16] {
                    settings.push(setting("kmeans", Some(k), coding, ft, 90.0));
                }
            }
        }
        let figs = figures("g", &settings);
        let names: Vec<&str> = figs.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "accuracy_vs_codeword_zoom",
                "accuracy_vs_codeword",
                "sensitivity_k_zoom",
                "sensitivity_k",
                "accuracy_vs_ratio"
            ]
        );
        let titles: Vec<&str> = figs[1].panels.iter().map(|p| p.title.as_str()).collect();
        assert_eq!(
            titles,
            [
                "fixed coding",
                "fixed coding, fine-tuned",
                "huffman coding",
                "huffman coding, fine-tuned"
            ]
        );
        assert_eq!(figs[1].panels[0].series[0].points.len(), 2);
        assert_eq!(figs[1].panels[0].series[0].label, "k-means");
    }

    #[test]
    fn compensated_rounding_gets_a_panel_per_quantizer_and_its_own_series() {
        let mut settings = Vec::new();
        for weighting in [None, Some("hessian")] {
            for rounding in [None, Some("compensated")] {
                for (k, top1) in [(2, 60.0), (4, 85.0)] {
                    let mut s = setting("kmeans", Some(k), "huffman", false, top1);
                    s.weighting = weighting.map(str::to_owned);
                    s.rounding = rounding.map(str::to_owned);
                    settings.push(s);
                }
            }
        }
        let figs = figures("g", &settings);
        let fig = figs.iter().find(|f| f.name == "rounding").unwrap();
        let titles: Vec<&str> = fig.panels.iter().map(|p| p.title.as_str()).collect();
        assert_eq!(titles, ["k-means", "hessian-weighted k-means"]);
        let labels: Vec<&str> = fig.panels[1]
            .series
            .iter()
            .map(|s| s.label.as_str())
            .collect();
        assert_eq!(
            labels,
            [
                "hessian-weighted k-means",
                "hessian-weighted k-means, compensated"
            ]
        );
        assert!(figs.iter().any(|f| f.name == "rounding_zoom"));
        // without compensated rounding there is no such figure
        settings.retain(|s| s.rounding.is_none());
        assert!(figures("g", &settings)
            .iter()
            .all(|f| !f.name.starts_with("rounding")));
    }

    #[test]
    fn with_several_prunings_the_ratio_figure_has_a_panel_per_quantizer_and_coding() {
        let mut settings = Vec::new();
        for prune in ["paper", "gradual4"] {
            for coding in ["huffman", "context"] {
                for (k, top1) in [(8, 89.0), (16, 90.0)] {
                    let mut s = setting("uniform", Some(k), coding, true, top1);
                    s.prune = Some(prune.into());
                    s.weighting = Some("hessian".into());
                    settings.push(s);
                }
            }
        }
        let figs = figures("g", &settings);
        let ratio = figs.iter().find(|f| f.name == "accuracy_vs_ratio").unwrap();
        let titles: Vec<&str> = ratio.panels.iter().map(|p| p.title.as_str()).collect();
        assert_eq!(
            titles,
            [
                "hessian-weighted uniform, huffman coding",
                "hessian-weighted uniform, context coding"
            ]
        );
        let labels: Vec<&str> = ratio.panels[0]
            .series
            .iter()
            .map(|s| s.label.as_str())
            .collect();
        assert_eq!(
            labels,
            ["pruned: paper", "pruned: gradual4", "Pareto front"]
        );
        // both prunings give the same two points here: the front keeps one of each
        assert_eq!(
            ratio.panels[0].series[0].points,
            vec![(32.0 / 3.0, 89.0), (8.0, 90.0)]
        );
        assert_eq!(ratio.panels[0].series[2].points.len(), 2);
        let zoom = figs
            .iter()
            .find(|f| f.name == "accuracy_vs_ratio_zoom")
            .unwrap();
        assert!(
            zoom.title.ends_with("(within 2 points of the best)"),
            "{}",
            zoom.title
        );
    }

    #[test]
    fn a_language_model_is_drawn_in_bits_with_fewer_bits_better() {
        // bits per character: 2.45 (k=16), 2.6 (k=2), 3.5 (uniform k=2)
        let text = |method: &str, k: u64, bits: f64| Setting {
            dataset: "shakespeare".into(),
            metric: Metric::BitsPerCharacter,
            ..setting(method, Some(k), "huffman", false, bits)
        };
        let settings = [
            text("kmeans", 2, 2.6),
            text("kmeans", 16, 2.45),
            text("uniform", 2, 3.5),
        ];
        let figs = figures("g", &settings);
        let zoom = &figs[0];
        assert_eq!(zoom.y_label, "test cross-entropy (bits per character)");
        assert!(
            zoom.title.ends_with("(within 0.25 bits of the best)"),
            "{}",
            zoom.title
        );
        // uniform's 3.5 bits are more than 0.25 bits worse than 2.45; k-means'
        // 2.6 are not
        let kept: Vec<Vec<(f64, f64)>> = zoom.panels[0]
            .series
            .iter()
            .map(|s| s.points.clone())
            .collect();
        assert_eq!(kept, vec![vec![(1.0, 2.6), (4.0, 2.45)], vec![]]);
        // the loss falls with the bits spent: the legend goes lower left
        assert!(zoom.legend_lower_left);
        let ratio = figs.iter().find(|f| f.name == "accuracy_vs_ratio").unwrap();
        assert!(!ratio.legend_lower_left);
        let front = &ratio.panels[0].series.last().unwrap().points;
        // ratio 32/4 = 8 at 2.45 bits, 32 at 2.6: uniform's 32 at 3.5 is beaten
        assert_eq!(front, &vec![(8.0, 2.45), (32.0, 2.6)]);
    }

    #[test]
    fn pareto_front_in_bits_keeps_the_lowest_loss() {
        let pts = [(10.0, 2.4), (20.0, 2.5), (20.0, 2.45), (15.0, 2.6)];
        assert_eq!(
            pareto_front(&pts, Metric::BitsPerCharacter),
            vec![(10.0, 2.4), (20.0, 2.45)]
        );
    }

    #[test]
    fn the_zoom_keeps_what_lies_near_the_best_point_with_its_error_bar() {
        let mut low = setting("kmeans", Some(2), "huffman", false, 60.0);
        low.quality.std = Some(3.0);
        let mut high = setting("kmeans", Some(16), "huffman", false, 90.0);
        high.quality.std = Some(0.2);
        let settings = [
            low,
            high,
            setting("uniform", Some(2), "huffman", false, 70.0),
        ];
        let figs = figures("g", &settings);
        let full = &figs[1];
        assert_eq!(full.panels[0].series[0].errors, vec![3.0, 0.2]);
        let zoom = &figs[0];
        assert_eq!(zoom.name, "accuracy_vs_codeword_zoom");
        assert!(
            zoom.title.ends_with("(within 5 points of the best)"),
            "{}",
            zoom.title
        );
        assert_eq!(zoom.panels[0].series[0].points, vec![(4.0, 90.0)]);
        assert_eq!(zoom.panels[0].series[0].errors, vec![0.2]);
        // uniform (70 %) is more than 5 points below 90 %: its series stays,
        // empty, so that the colours follow the full figure's series
        let labels = |f: &Figure| -> Vec<String> {
            f.panels[0].series.iter().map(|s| s.label.clone()).collect()
        };
        assert_eq!(labels(zoom), labels(full));
        assert!(zoom.panels[0].series[1].points.is_empty());
        // and it is neither drawn nor named in the legend
        let dir = tempfile::tempdir().unwrap();
        let svg = write_figure(zoom, dir.path())
            .unwrap()
            .into_iter()
            .find(|p| p.extension().unwrap() == "svg")
            .unwrap();
        let text = std::fs::read_to_string(svg).unwrap();
        let uniform = &full.panels[0].series[1].label;
        assert!(text.contains(&full.panels[0].series[0].label), "{text}");
        assert!(!text.contains(uniform.as_str()), "{uniform} drawn: {text}");
    }

    #[test]
    fn narrow_axes_get_the_decimals_that_tell_their_ticks_apart() {
        // 0 to 100 %: one decimal (the least asked for)
        assert_eq!(linear_decimals(0.0, 100.0, 1), 1);
        // 2.93 to 2.94 bits: ticks 0.001 apart need three
        assert_eq!(linear_decimals(2.93, 2.94, 2), 3);
        // 3.2 to 3.5 bits per character: ticks 0.03 apart need two
        assert_eq!(linear_decimals(3.2, 3.5, 1), 2);
        assert_eq!(linear_decimals(1.0, 1.0, 2), 2, "an empty range");
    }

    #[test]
    fn figures_are_written_as_svg_and_png() {
        let settings = [
            setting("kmeans", Some(4), "huffman", false, 88.0),
            setting("kmeans", Some(16), "huffman", false, 90.0),
            setting("ecsq", None, "huffman", false, 89.0),
        ];
        let dir = tempfile::tempdir().unwrap();
        for fig in figures("g", &settings) {
            for path in write_figure(&fig, dir.path()).unwrap() {
                let bytes = std::fs::read(&path).unwrap();
                assert!(bytes.len() > 1000, "{}", path.display());
                if path.extension().unwrap() == "png" {
                    assert_eq!(&bytes[1..4], b"PNG");
                } else {
                    let text = String::from_utf8(bytes).unwrap();
                    assert!(
                        text.contains(&fig.x_label) && text.contains(&fig.title),
                        "{text}"
                    );
                }
            }
        }
    }
}
