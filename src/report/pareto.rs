//! Pareto plots (accuracy against spikes or energy per image) as SVG and
//! PNG, drawn with `plotters`. Text needs a TrueType font (see
//! [`super::font`]).

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use super::aggregate::{PointRow, pareto_front};
use super::font::{FAMILY, ensure_font};
use super::output::{atomic_write, temp_path};
use super::welch::ci95_half_width;

const SIZE: (u32, u32) = (1100, 750);

/// One Pareto plot's data.
struct Spec<'a> {
    rows: &'a [PointRow],
    cost: fn(&PointRow) -> f64,
    x_desc: &'a str,
    title: &'a str,
}

fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, spec: &Spec) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let rows = spec.rows;
    let cost = spec.cost;
    root.fill(&WHITE).map_err(e)?;
    let xs: Vec<f64> = rows.iter().map(cost).collect();
    let ys: Vec<f64> = rows
        .iter()
        .flat_map(|r| {
            let h = ci95_half_width(&r.acc);
            [r.acc.mean - h, r.acc.mean + h]
        })
        .collect();
    let (x0, x1) = pad(&xs, 0.08);
    let (y0, y1) = pad(&ys, 0.12);
    let mut chart = ChartBuilder::on(root)
        .caption(spec.title, (FAMILY, 24))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc(spec.x_desc)
        .y_desc("test accuracy (%)")
        .label_style((FAMILY, 15))
        .axis_desc_style((FAMILY, 17))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(e)?;
    let grey = RGBColor(120, 120, 120);
    // Error bars (t-based 95 % CI of the mean over seeds), then every
    // configuration.
    chart
        .draw_series(rows.iter().filter(|r| r.acc.n > 1).map(|r| {
            let (x, h) = (cost(r), ci95_half_width(&r.acc));
            PathElement::new(
                vec![(x, r.acc.mean - h), (x, r.acc.mean + h)],
                grey.stroke_width(1),
            )
        }))
        .map_err(e)?;
    chart
        .draw_series(
            rows.iter()
                .map(|r| Circle::new((cost(r), r.acc.mean), 4, grey.filled())),
        )
        .map_err(e)?
        .label("configuration (mean, 95 % CI over seeds)")
        .legend(move |(x, y)| Circle::new((x + 10, y), 4, grey.filled()));
    let front = pareto_front(rows, cost);
    let red = RGBColor(200, 30, 30);
    chart
        .draw_series(LineSeries::new(
            front.iter().map(|&i| (cost(&rows[i]), rows[i].acc.mean)),
            red.stroke_width(2),
        ))
        .map_err(e)?
        .label("Pareto front")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], red.stroke_width(2)));
    chart
        .draw_series(front.iter().enumerate().map(|(j, &i)| {
            let r = &rows[i];
            // Alternate labels above and below the point to limit overlap.
            // Labels right of the middle go to the left of their point.
            let dy = if j % 2 == 0 { -20 } else { 8 };
            let label = r.label();
            let dx = if cost(r) > (x0 + x1) / 2.0 {
                -(label.chars().count() as i32 * 7 + 8)
            } else {
                8
            };
            EmptyElement::at((cost(r), r.acc.mean))
                + Circle::new((0, 0), 5, red.filled())
                + Text::new(label, (dx, dy), (FAMILY, 13).into_font().color(&BLACK))
        }))
        .map_err(e)?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .label_font((FAMILY, 15))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(e)?;
    root.present().map_err(e)?;
    Ok(())
}

/// Range of `v` widened by `frac` of its span on each side (never empty).
fn pad(v: &[f64], frac: f64) -> (f64, f64) {
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !lo.is_finite() || !hi.is_finite() {
        return (0.0, 1.0);
    }
    let span = if hi > lo {
        hi - lo
    } else {
        lo.abs().max(1.0) * 0.1
    };
    (lo - frac * span, hi + frac * span)
}

fn energy_nj(r: &PointRow) -> f64 {
    r.energy_pj_float32.mean / 1e3
}

fn spikes(r: &PointRow) -> f64 {
    r.spikes_per_image.mean
}

/// Draw both Pareto plots into `dir` as SVG and PNG; returns the files.
pub fn pareto_plots(rows: &[PointRow], dir: &Path) -> Result<Vec<PathBuf>, String> {
    ensure_font()?;
    let specs = [
        (
            "pareto-spikes",
            Spec {
                rows,
                cost: spikes,
                x_desc: "spikes per image (all FS codings, input included)",
                title: "Accuracy vs spikes per image",
            },
        ),
        (
            "pareto-energy",
            Spec {
                rows,
                cost: energy_nj,
                x_desc: "SNN energy per image (nJ, float32 AC 0.9 pJ, 45 nm)",
                title: "Accuracy vs energy per image",
            },
        ),
    ];
    let mut files = Vec::new();
    for (name, spec) in &specs {
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
            draw(&root, spec)?;
        }
        let svg_path = dir.join(format!("{name}.svg"));
        atomic_write(&svg_path, svg.as_bytes()).map_err(|e| e.to_string())?;
        files.push(svg_path);
        let png_path = dir.join(format!("{name}.png"));
        let tmp = temp_path(dir, &format!("{name}.png"));
        {
            let root = BitMapBackend::new(&tmp, SIZE).into_drawing_area();
            draw(&root, spec)?;
        }
        std::fs::rename(&tmp, &png_path).map_err(|e| format!("{}: {e}", png_path.display()))?;
        files.push(png_path);
    }
    Ok(files)
}
