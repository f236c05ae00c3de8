//! The SVG plots: grouped bar charts drawn with plotters' SVG backend.

use crate::run::{backend_key, mode_key, OrderKey};
use crate::summary::{has_steady_state, E1000Table, Group, Stats, VirtioCase};
use anyhow::{Context, Result};
use plotters::coord::ranged1d::{KeyPointHint, NoDefaultFormatting, Ranged, ValueFormatter};
use plotters::prelude::*;
use std::collections::BTreeSet;
use std::ops::Range;
use std::path::Path;

pub const PPS_VIRTIO: &str = "pps-virtio-net.svg";
pub const EXITS_VIRTIO: &str = "exits-per-packet-virtio-net.svg";
pub const EXITS_E1000: &str = "exits-per-packet-e1000.svg";
pub const CPU_VIRTIO: &str = "cpu-per-packet-virtio-net.svg";

/// What happened to one plot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlotOutcome {
    Drawn { file: String, title: String },
    Skipped { file: String, reason: String },
}

/// One bar: its height and the spread drawn as a whisker.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bar {
    pub value: f64,
    pub low: f64,
    pub high: f64,
}

impl Bar {
    fn flat(value: f64) -> Self {
        Self {
            value,
            low: value,
            high: value,
        }
    }

    fn spread(s: &Stats) -> Self {
        Self {
            value: s.median,
            low: s.min,
            high: s.max,
        }
    }
}

/// A grouped bar chart: for each group on the x axis, a bar per series.
#[derive(Debug, Clone, PartialEq)]
pub struct BarChart {
    pub title: String,
    pub x_desc: String,
    pub y_desc: String,
    pub groups: Vec<String>,
    pub series: Vec<String>,
    /// `bars[group][series]`; `None` where there is no such run.
    pub bars: Vec<Vec<Option<Bar>>>,
}

const COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

/// A y tick label, with as many decimals as an axis up to `y_max` needs.
fn axis_number(y: f64, y_max: f64) -> String {
    let decimals = match y_max {
        m if m >= 50.0 => 0,
        m if m >= 5.0 => 1,
        m if m >= 0.5 => 2,
        _ => 3,
    };
    format!("{y:.decimals$}")
}

/// The x axis of a grouped bar chart: group `g` spans `g..g + 1`, its name
/// is the tick label at its centre.
struct GroupAxis<'a> {
    names: &'a [String],
}

impl GroupAxis<'_> {
    fn len(&self) -> f64 {
        self.names.len().max(1) as f64
    }
}

impl Ranged for GroupAxis<'_> {
    type FormatOption = NoDefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let span = f64::from(limit.1 - limit.0);
        limit.0 + (span * value / self.len()).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            (0..self.names.len()).map(|g| g as f64 + 0.5).collect()
        }
    }

    fn range(&self) -> Range<f64> {
        0.0..self.len()
    }
}

impl ValueFormatter<f64> for GroupAxis<'_> {
    fn format_ext(&self, value: &f64) -> String {
        let index = value.floor();
        if index >= 0.0 {
            self.names.get(index as usize).cloned().unwrap_or_default()
        } else {
            String::new()
        }
    }
}

/// Draws `chart` into the SVG file `path`.
pub fn draw(path: &Path, chart: &BarChart) -> Result<()> {
    draw_inner(path, chart).with_context(|| format!("drawing {}", path.display()))
}

fn draw_inner(path: &Path, chart: &BarChart) -> Result<()> {
    let n_groups = chart.groups.len().max(1);
    let n_series = chart.series.len().max(1);
    let width = (170 * n_groups as u32 + 200).max(800);
    let root = SVGBackend::new(path, (width, 560)).into_drawing_area();
    root.fill(&WHITE)?;

    // Leave room above the bars for the legend, an entry per series.
    let top = chart
        .bars
        .iter()
        .flatten()
        .flatten()
        .map(|b| b.high.max(b.value))
        .fold(0.0, f64::max);
    let headroom = 1.0 / (1.0 - (0.1 + 0.05 * n_series as f64).min(0.6));
    let y_max = if top > 0.0 { top * headroom } else { 1.0 };

    let mut ctx = ChartBuilder::on(&root)
        .caption(&chart.title, ("sans-serif", 26))
        .margin(15)
        .x_label_area_size(55)
        .y_label_area_size(90)
        .build_cartesian_2d(
            GroupAxis {
                names: &chart.groups,
            },
            0.0..y_max,
        )?;
    ctx.configure_mesh()
        .disable_x_mesh()
        .label_style(("sans-serif", 16))
        .axis_desc_style(("sans-serif", 18))
        .x_desc(chart.x_desc.as_str())
        .y_desc(chart.y_desc.as_str())
        .y_label_formatter(&|y: &f64| axis_number(*y, y_max))
        .draw()?;

    let slot = 0.8 / n_series as f64;
    for (s, name) in chart.series.iter().enumerate() {
        let color = COLORS[s % COLORS.len()];
        let bars: Vec<(f64, Bar)> = chart
            .bars
            .iter()
            .enumerate()
            .filter_map(|(g, row)| {
                let x0 = g as f64 + 0.1 + s as f64 * slot;
                row.get(s).copied().flatten().map(|b| (x0, b))
            })
            .collect();
        ctx.draw_series(bars.iter().map(|&(x0, b)| {
            Rectangle::new([(x0, 0.0), (x0 + slot * 0.9, b.value)], color.filled())
        }))?
        .label(name.as_str())
        .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()));
        ctx.draw_series(bars.iter().filter(|(_, b)| b.high > b.low).map(|&(x0, b)| {
            let xc = x0 + slot * 0.45;
            PathElement::new(vec![(xc, b.low), (xc, b.high)], BLACK.stroke_width(1))
        }))?;
    }
    ctx.configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font(("sans-serif", 16))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

/// Names in key order, as found in `rows`' groups.
fn series_of<'a>(
    rows: impl Iterator<Item = &'a [(String, Group)]>,
    key: fn(&str) -> OrderKey,
) -> Vec<String> {
    let set: BTreeSet<OrderKey> = rows.flatten().map(|(name, _)| key(name)).collect();
    set.into_iter().map(|(_, name)| name).collect()
}

/// A bar per series from `rows`; `None` where a series has no row or
/// `bar` finds nothing to draw.
fn bars_for(
    rows: &[(String, Group)],
    series: &[String],
    bar: impl Fn(&Group) -> Option<Bar>,
) -> Vec<Option<Bar>> {
    series
        .iter()
        .map(|s| rows.iter().find(|(n, _)| n == s).and_then(|(_, g)| bar(g)))
        .collect()
}

/// A virtio-net plot: a group per case, a bar per backend.
fn virtio_chart(
    cases: &[VirtioCase],
    title: &str,
    y_desc: &str,
    bar: fn(&Group) -> Option<Bar>,
) -> BarChart {
    let series = series_of(cases.iter().map(|c| c.backends.as_slice()), backend_key);
    BarChart {
        title: title.into(),
        x_desc: "direction, frame size, mode".into(),
        y_desc: y_desc.into(),
        groups: cases.iter().map(VirtioCase::label).collect(),
        bars: cases
            .iter()
            .map(|c| bars_for(&c.backends, &series, bar))
            .collect(),
        series,
    }
}

/// The whole-run virtio-net plots.
pub fn virtio_charts(cases: &[VirtioCase]) -> [BarChart; 2] {
    [
        virtio_chart(
            cases,
            "virtio-net: packets per second by backend (median, whisker: min–max)",
            "packets per second",
            |g| Some(Bar::spread(&g.pps)),
        ),
        virtio_chart(
            cases,
            "virtio-net: VM exits per packet by backend (median)",
            "exits per packet",
            |g| Some(Bar::flat(g.exits_per_packet)),
        ),
    ]
}

/// The device's CPU time per packet in the steady state, a group per case
/// with a window; `None` when no case has one.
pub fn cpu_chart(cases: &[VirtioCase]) -> Option<BarChart> {
    let steady: Vec<VirtioCase> = cases
        .iter()
        .filter(|c| has_steady_state(&c.backends))
        .cloned()
        .collect();
    (!steady.is_empty()).then(|| {
        virtio_chart(
            &steady,
            "virtio-net: device CPU ns per packet, steady state (median, min–max)",
            "device CPU ns per packet",
            |g| Some(Bar::spread(&g.steady.as_ref()?.device_cpu_ns_per_packet)),
        )
    })
}

/// The e1000 plot: a group per (direction, size), a bar per mode.
pub fn e1000_chart(tables: &[E1000Table]) -> BarChart {
    let series = series_of(tables.iter().map(|t| t.modes.as_slice()), mode_key);
    BarChart {
        title: "e1000: VM exits per packet by mode (median)".into(),
        x_desc: "direction, frame size".into(),
        y_desc: "exits per packet".into(),
        groups: tables.iter().map(|t| t.shape.label()).collect(),
        bars: tables
            .iter()
            .map(|t| bars_for(&t.modes, &series, |g| Some(Bar::flat(g.exits_per_packet))))
            .collect(),
        series,
    }
}

/// Draws every plot into `dir`, skipping a device's plots when it has no
/// runs and the steady-state plot when no run has a window.
pub fn draw_all(
    dir: &Path,
    cases: &[VirtioCase],
    tables: &[E1000Table],
) -> Result<Vec<PlotOutcome>> {
    let mut out = Vec::new();
    let mut emit = |file: &str, chart: Option<BarChart>, lacking: &str| -> Result<()> {
        match chart {
            Some(chart) => {
                draw(&dir.join(file), &chart)?;
                out.push(PlotOutcome::Drawn {
                    file: file.into(),
                    title: chart.title,
                });
            }
            None => out.push(PlotOutcome::Skipped {
                file: file.into(),
                reason: lacking.into(),
            }),
        }
        Ok(())
    };
    let [pps, exits] = virtio_charts(cases);
    let has_virtio = !cases.is_empty();
    emit(
        PPS_VIRTIO,
        has_virtio.then_some(pps),
        "no virtio-net TX or RX runs",
    )?;
    emit(
        EXITS_VIRTIO,
        has_virtio.then_some(exits),
        "no virtio-net TX or RX runs",
    )?;
    emit(
        EXITS_E1000,
        (!tables.is_empty()).then(|| e1000_chart(tables)),
        "no e1000 runs",
    )?;
    emit(
        CPU_VIRTIO,
        cpu_chart(cases),
        "no virtio-net TX or RX run has a steady-state window",
    )?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::summary::tests::{run, steady_run};
    use crate::summary::{e1000_tables, virtio_cases};

    #[test]
    fn charts_have_a_bar_per_series_and_group() {
        let runs = vec![
            run("virtio-net", "vhost", "event-idx", "tx", 64, 1000.0, 1),
            run("virtio-net", "rvhost", "event-idx", "tx", 64, 1800.0, 1),
            run("virtio-net", "rvhost", "event-idx", "tx", 64, 2200.0, 2),
            run("virtio-net", "rvhost", "no-event-idx", "tx", 64, 900.0, 1),
            run("e1000", "user", "coalesced", "tx", 64, 100.0, 1),
            run("e1000", "user", "baseline", "rx", 64, 100.0, 1),
        ];
        let [pps, _] = virtio_charts(&virtio_cases(&runs));
        assert_eq!(pps.series, vec!["rvhost", "vhost"]);
        assert_eq!(pps.groups, vec!["tx 64B event-idx", "tx 64B no-event-idx"]);
        assert_eq!(
            pps.bars[0][0],
            Some(Bar {
                value: 2000.0,
                low: 1800.0,
                high: 2200.0
            })
        );
        assert_eq!(pps.bars[1][1], None);
        let e1000 = e1000_chart(&e1000_tables(&runs));
        assert_eq!(e1000.series, vec!["baseline", "coalesced"]);
        assert_eq!(e1000.groups, vec!["tx 64B", "rx 64B"]);
        assert_eq!(e1000.bars[0][0], None);
    }

    #[test]
    fn cpu_chart_has_the_cases_with_windows() {
        let runs = vec![
            steady_run("virtio-net", "rvhost", "event-idx", 2000.0, 400.0, 1),
            steady_run("virtio-net", "rvhost", "event-idx", 2000.0, 600.0, 2),
            steady_run("virtio-net", "vhost", "event-idx", 1000.0, 900.0, 1),
            run("virtio-net", "user", "event-idx", "tx", 64, 300.0, 1),
            run("virtio-net", "rvhost", "no-event-idx", "tx", 64, 900.0, 1),
        ];
        let chart = cpu_chart(&virtio_cases(&runs)).unwrap();
        assert_eq!(chart.groups, vec!["tx 64B event-idx"]);
        assert_eq!(chart.series, vec!["rvhost", "vhost", "user"]);
        let rvhost = Bar {
            value: 500.0,
            low: 400.0,
            high: 600.0,
        };
        assert_eq!(
            chart.bars,
            vec![vec![Some(rvhost), Some(Bar::flat(900.0)), None]]
        );
        assert_eq!(cpu_chart(&virtio_cases(&runs[3..])), None);
    }

    #[test]
    fn axis_numbers_fit_the_axis() {
        assert_eq!(axis_number(2000.0, 6000.0), "2000");
        assert_eq!(axis_number(2.0, 12.0), "2.0");
        assert_eq!(axis_number(0.25, 1.2), "0.25");
        assert_eq!(axis_number(0.025, 0.12), "0.025");
    }

    #[test]
    fn svg_has_title_labels_and_bars() {
        let dir = std::env::temp_dir().join(format!("rvhost-report-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.svg");
        let chart = BarChart {
            title: "A title".into(),
            x_desc: "the x axis".into(),
            y_desc: "the y axis".into(),
            groups: vec!["tx 64B".into(), "rx 64B".into()],
            series: vec!["one".into(), "two".into()],
            bars: vec![
                vec![Some(Bar::flat(1.0)), None],
                vec![
                    Some(Bar::flat(2.0)),
                    Some(Bar::spread(&Stats::of(&[1.0, 3.0]).unwrap())),
                ],
            ],
        };
        draw(&path, &chart).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(svg.starts_with("<svg"));
        for text in [
            "A title",
            "the x axis",
            "the y axis",
            "tx 64B",
            "rx 64B",
            "one",
            "two",
        ] {
            assert!(
                svg.contains(&format!(">\n{text}\n</text>")),
                "{text} missing"
            );
        }
        assert!(svg.matches("<rect").count() >= 4);
    }
}
