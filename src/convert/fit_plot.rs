//! Plot of a fitted FS neuron `f̂(x)` against its target activation
//! (`fit.png`, `fit.svg`).

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::fit::FitResult;
use crate::report::font::{FAMILY, ensure_font};
use crate::report::output::atomic_write;

const SIZE: (u32, u32) = (1000, 650);

fn curve(r: &FitResult) -> Vec<(f64, f64, f64)> {
    r.curve(2001)
        .into_iter()
        .map(|(x, target, o, _)| (x as f64, target, o as f64))
        .collect()
}

fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, r: &FitResult) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(e)?;
    let pts = curve(r);
    let lo = pts
        .iter()
        .map(|p| p.1.min(p.2))
        .fold(f64::INFINITY, f64::min);
    let hi = pts
        .iter()
        .map(|p| p.1.max(p.2))
        .fold(f64::NEG_INFINITY, f64::max);
    let pad = 0.05 * (hi - lo).max(1e-6);
    let title = format!(
        "FS neuron fitted to {} (K = {}): MSE {:.2e} on [{}, {}], {:.2e} on [-2, 2]",
        r.activation.name(),
        r.k,
        r.mse_range,
        r.range.0,
        r.range.1,
        r.mse_inner
    );
    let mut chart = ChartBuilder::on(root)
        .caption(title, (FAMILY, 20))
        .margin(20)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(r.range.0 as f64..r.range.1 as f64, lo - pad..hi + pad)
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("x")
        .y_desc("output")
        .label_style((FAMILY, 15))
        .axis_desc_style((FAMILY, 17))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(e)?;
    chart
        .draw_series(LineSeries::new(
            pts.iter().map(|p| (p.0, p.1)),
            BLACK.stroke_width(2),
        ))
        .map_err(e)?
        .label(format!("{} (target)", r.activation.name()))
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.stroke_width(2)));
    let blue = RGBColor(31, 119, 180);
    chart
        .draw_series(LineSeries::new(
            pts.iter().map(|p| (p.0, p.2)),
            blue.stroke_width(2),
        ))
        .map_err(e)?
        .label("FS neuron f̂(x)")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], blue.stroke_width(2)));
    chart
        .configure_series_labels()
        .label_font((FAMILY, 16))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(e)?;
    root.present().map_err(e)?;
    Ok(())
}

/// Write `fit.svg` and `fit.png` into `dir` (each atomically).
pub fn plot(r: &FitResult, dir: &Path) -> Result<(), String> {
    ensure_font()?;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        draw(&root, r)?;
    }
    atomic_write(&dir.join("fit.svg"), svg.as_bytes()).map_err(|e| e.to_string())?;
    let tmp = crate::report::output::temp_path(dir, "fit.png");
    {
        let root = BitMapBackend::new(&tmp, SIZE).into_drawing_area();
        draw(&root, r)?;
    }
    std::fs::rename(&tmp, dir.join("fit.png")).map_err(|e| e.to_string())
}
