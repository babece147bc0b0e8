//! Writes a run's time series (CSV) and plot (PNG) under `target/bwe/`.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::prelude::*;
use sfu_bwe::sim::Report;

/// `$CARGO_TARGET_DIR/bwe`, or `target/bwe` at the workspace root.
pub fn out_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("bwe")
}

pub fn write_artifacts(report: &Report) {
    let dir = out_dir();
    std::fs::create_dir_all(&dir).expect("create target/bwe");
    let csv = dir.join(format!("{}.csv", report.name));
    std::fs::write(&csv, report.to_csv()).expect("write csv");
    let png = dir.join(format!("{}.png", report.name));
    match plot(report, &png) {
        Ok(()) => println!("time series: {}\nplot: {}", csv.display(), png.display()),
        Err(e) => println!("time series: {} (plot failed: {e})", csv.display()),
    }
}

/// Flow colours: (send rate, estimate).
const FLOW_COLORS: [(RGBColor, RGBColor); 3] = [
    (RGBColor(31, 119, 180), RGBColor(140, 190, 230)),
    (RGBColor(214, 39, 40), RGBColor(240, 150, 150)),
    (RGBColor(44, 160, 44), RGBColor(150, 220, 150)),
];

/// Text needs a font file: use the system's DejaVu Sans if present, else draw without text.
fn have_font() -> bool {
    static FONT: OnceLock<bool> = OnceLock::new();
    *FONT.get_or_init(|| {
        let candidates = [
            "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
            "/usr/share/fonts/TTF/DejaVuSans.ttf",
            "/usr/share/fonts/dejavu/DejaVuSans.ttf",
        ];
        let Some(bytes) = candidates.iter().find_map(|p| std::fs::read(p).ok()) else {
            println!("no font found: plot without text; black = capacity, dark = send rate, light = estimate (flow 0 blue, 1 red, 2 green), bottom = queuing delay");
            return false;
        };
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok()
    })
}

fn plot(report: &Report, path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let text = have_font();
    let root = BitMapBackend::new(path, (1400, 900)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, bottom) = root.split_vertically(620);
    let t_max = report.samples.last().map_or(1.0, |s| s.t);
    let r_max = report
        .samples
        .iter()
        .flat_map(|s| std::iter::once(s.capacity_bps).chain(s.flows.iter().flat_map(|f| [f.send_bps, f.estimate_bps])))
        .fold(0.0f64, f64::max)
        / 1e6
        * 1.1;
    let q_max = report.samples.iter().map(|s| s.queuing_ms).fold(10.0f64, f64::max) * 1.1;

    let mut rates = ChartBuilder::on(&top);
    rates.margin(12).x_label_area_size(if text { 30 } else { 0 }).y_label_area_size(if text { 60 } else { 0 });
    if text {
        rates.caption(format!("{}: rates (Mbit/s)", report.name), ("sans-serif", 24));
    }
    let mut rates = rates.build_cartesian_2d(0.0..t_max, 0.0..r_max)?;
    let mut mesh = rates.configure_mesh();
    if !text {
        mesh.disable_x_mesh().disable_y_mesh().x_labels(0).y_labels(0);
    }
    mesh.draw()?;
    let series = |f: &dyn Fn(&sfu_bwe::sim::Sample) -> f64| -> Vec<(f64, f64)> {
        report.samples.iter().map(|s| (s.t, f(s))).collect()
    };
    let flows = report.samples.first().map_or(0, |s| s.flows.len());
    for i in 0..flows {
        let (dark, light) = FLOW_COLORS[i % FLOW_COLORS.len()];
        let est =
            rates.draw_series(LineSeries::new(series(&|s| s.flows[i].estimate_bps / 1e6), light.stroke_width(2)))?;
        if text {
            est.label(format!("flow {i} estimate"))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], light.stroke_width(3)));
        }
        let send = rates.draw_series(LineSeries::new(series(&|s| s.flows[i].send_bps / 1e6), dark.stroke_width(1)))?;
        if text {
            send.label(format!("flow {i} send rate"))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], dark.stroke_width(3)));
        }
    }
    let cap = rates.draw_series(LineSeries::new(series(&|s| s.capacity_bps / 1e6), BLACK.stroke_width(3)))?;
    if text {
        cap.label("capacity").legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.stroke_width(3)));
        rates.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
    }

    let mut queue = ChartBuilder::on(&bottom);
    queue.margin(12).x_label_area_size(if text { 30 } else { 0 }).y_label_area_size(if text { 60 } else { 0 });
    if text {
        queue.caption("queuing delay (ms) over time (s)", ("sans-serif", 18));
    }
    let mut queue = queue.build_cartesian_2d(0.0..t_max, 0.0..q_max)?;
    let mut mesh = queue.configure_mesh();
    if !text {
        mesh.disable_x_mesh().disable_y_mesh().x_labels(0).y_labels(0);
    }
    mesh.draw()?;
    queue.draw_series(LineSeries::new(series(&|s| s.queuing_ms), RGBColor(120, 60, 160).stroke_width(1)))?;
    root.present()?;
    Ok(())
}
