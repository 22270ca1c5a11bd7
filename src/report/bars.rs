//! Bar charts of a comparison (PNG and SVG), with `plotters`.
//!
//! The PNG needs a TrueType font for its text: DejaVu Sans is looked up in
//! the usual system places (Debian: `fonts-dejavu-core`) or `$FSNN_FONT`.
//! Without one (text layout needs its metrics), both are drawn without text.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::{Error, Result};

/// One panel: a title and one value (± error) per compared config.
pub struct Panel {
    /// Title of the panel.
    pub title: String,
    /// (value, error bar half-height) per config.
    pub values: Vec<(f64, f64)>,
    /// Bars start here instead of 0 (e.g. for accuracies near 100 %).
    pub zoom: bool,
}

/// Registers the plots' font once; false if none was found.
fn font_available() -> bool {
    super::font::ensure_font().is_ok()
}

fn plot_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::file(path, format!("cannot draw chart: {e}"))
}

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    names: &[String],
    panels: &[Panel],
    text: bool,
) -> std::result::Result<(), String> {
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let areas = root.split_evenly((1, panels.len()));
    let n = names.len();
    for (area, p) in areas.iter().zip(panels) {
        let hi_v = p.values.iter().map(|v| v.0 + v.1).fold(0.0f64, f64::max);
        let lo_v = p
            .values
            .iter()
            .map(|v| v.0 - v.1)
            .fold(f64::INFINITY, f64::min);
        let (lo, hi) = if p.zoom {
            let lo = (lo_v - 1.0).floor().max(0.0);
            (lo, (hi_v + 0.5).ceil().max(lo + 1.0))
        } else {
            (0.0, (hi_v * 1.15).max(1e-9))
        };
        let mut b = ChartBuilder::on(area);
        b.margin(8);
        if text {
            b.caption(&p.title, ("sans-serif", 16))
                .x_label_area_size(30)
                .y_label_area_size(55);
        }
        // `into_segmented` makes one segment per value of the inclusive range
        let mut chart = b
            .build_cartesian_2d((0..n.max(1) - 1).into_segmented(), lo..hi)
            .map_err(|e| e.to_string())?;
        if text {
            chart
                .configure_mesh()
                .disable_x_mesh()
                .x_labels(n)
                .x_label_formatter(&|v| match v {
                    SegmentValue::CenterOf(i) => names.get(*i).cloned().unwrap_or_default(),
                    _ => String::new(),
                })
                .y_label_formatter(&|v| {
                    let prec = if hi >= 100.0 {
                        0
                    } else if hi >= 10.0 {
                        1
                    } else {
                        3
                    };
                    format!("{v:.prec$}")
                })
                .label_style(("sans-serif", 12))
                .draw()
                .map_err(|e| e.to_string())?;
        }
        for (i, &(v, err)) in p.values.iter().enumerate() {
            let color = Palette99::pick(i).filled();
            chart
                .draw_series(
                    Histogram::vertical(&chart)
                        .style(color)
                        .margin(12)
                        .baseline(lo)
                        .data([(i, v)]),
                )
                .map_err(|e| e.to_string())?;
            if err > 0.0 {
                let x = SegmentValue::CenterOf(i);
                chart
                    .draw_series([PathElement::new(
                        vec![(x.clone(), v - err), (x, v + err)],
                        BLACK.stroke_width(2),
                    )])
                    .map_err(|e| e.to_string())?;
            }
        }
    }
    root.present().map_err(|e| e.to_string())
}

/// Draw the panels side by side into `png` and `svg` (written in place;
/// the caller renames them).
pub fn bars(names: &[String], panels: &[Panel], png: &Path, svg: &Path) -> Result<()> {
    let w = 300 * panels.len() as u32;
    let text = font_available();
    if !text {
        eprintln!(
            "warning: no TrueType font found (install fonts-dejavu-core or set FSNN_FONT); the charts have no text"
        );
    }
    draw(
        BitMapBackend::new(png, (w, 360)).into_drawing_area(),
        names,
        panels,
        text,
    )
    .map_err(|e| plot_err(png, e))?;
    draw(
        SVGBackend::new(svg, (w, 360)).into_drawing_area(),
        names,
        panels,
        text,
    )
    .map_err(|e| plot_err(svg, e))
}
