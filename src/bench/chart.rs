//! `hearth bench compare --svg`: one SVG image of the compared files. For every (adapter,
//! model) a group of bars, one per record: generation (`tg*`) tokens/s in the upper panel, each
//! with a red mark at its roofline (the adapter's streaming bandwidth ÷ the bytes the test read
//! per token), and prompt (`pp*`) tokens/s in the lower one. Text is SVG `<text>`: no font
//! library is needed, the viewer lays it out.

use super::compare::Labeled;
use super::report::BenchRecord;
use crate::{Error, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

const DECODE: RGBColor = RGBColor(0x1f, 0x77, 0xb4);
const PROMPT: RGBColor = RGBColor(0x2c, 0xa0, 0x2c);
const ROOFLINE: RGBColor = RGBColor(0xd6, 0x27, 0x28);
const FONT: &str = "sans-serif";
/// Width of one bar's slot, and room between groups, in pixels.
const SLOT: u32 = 96;
const GAP: u32 = 32;
/// Text sizes as plotters takes them (its SVG writes `font-size` as size ÷ 1.24), and a rough
/// width of one character of labels, to keep group labels apart.
const TEXT: u32 = 15;
const CHAR: u32 = 8;
const LINE: i32 = 17;
const Y_LABELS: u32 = 72;
const MARGIN: u32 = 12;

struct Bar<'a> {
    record: &'a BenchRecord,
    /// 1-based index of the file it came from, as the comparison table numbers them.
    file: usize,
    /// Tokens/s the streaming bandwidth allows, for generation tests that carry the figures.
    roofline: Option<f64>,
}

struct Group<'a> {
    adapter: &'a str,
    model: &'a str,
    bars: Vec<Bar<'a>>,
}

/// One panel: decode or prompt bars, grouped by (adapter, model) in order of first appearance.
struct Panel<'a> {
    title: &'static str,
    legend: &'static str,
    color: RGBColor,
    groups: Vec<Group<'a>>,
    /// Whether bars name their file: when more than one was given.
    several: bool,
}

fn roofline(r: &BenchRecord) -> Option<f64> {
    (r.stream_gbps > 0.0 && r.bytes_per_token > 0).then(|| r.stream_gbps * 1e9 / r.bytes_per_token as f64)
}

fn panel<'a>(
    files: &'a [Labeled],
    prefix: &str,
    title: &'static str,
    legend: &'static str,
    color: RGBColor,
) -> Panel<'a> {
    let mut groups: Vec<Group<'a>> = Vec::new();
    for (i, f) in files.iter().enumerate() {
        for record in f.records.iter().filter(|r| r.test.starts_with(prefix)) {
            let bar = Bar { record, file: i + 1, roofline: if prefix == "tg" { roofline(record) } else { None } };
            let (adapter, model) = (record.gpu_info.as_str(), record.model_type.as_str());
            match groups.iter_mut().find(|g| g.adapter == adapter && g.model == model) {
                Some(g) => g.bars.push(bar),
                None => groups.push(Group { adapter, model, bars: vec![bar] }),
            }
        }
    }
    Panel { title, legend, color, groups, several: files.len() > 1 }
}

/// A group's width in pixels: its bars, or its longest label.
fn group_width(g: &Group) -> u32 {
    let label = g.adapter.chars().count().max(g.model.chars().count()) as u32;
    (g.bars.len() as u32 * SLOT).max(label * CHAR + 16)
}

fn drawing_error(e: impl std::fmt::Display) -> Error {
    Error::Input(format!("cannot draw the benchmark chart: {e}"))
}

/// The chart of `files` as an SVG document.
pub fn svg(files: &[Labeled]) -> Result<String> {
    let panels: Vec<Panel> = [
        panel(
            files,
            "tg",
            "Generation (tg): tokens/s, and the roofline the streaming bandwidth allows",
            "measured generation tokens/s",
            DECODE,
        ),
        panel(files, "pp", "Prompt processing (pp): tokens/s", "measured prompt tokens/s", PROMPT),
    ]
    .into_iter()
    .filter(|p| !p.groups.is_empty())
    .collect();
    if panels.is_empty() {
        let names: Vec<String> = files.iter().map(|f| f.label.clone()).collect();
        return Err(Error::Input(format!(
            "nothing to chart: no tg* (generation) or pp* (prompt) results in {}",
            names.join(", ")
        )));
    }
    let plot_width = panels
        .iter()
        .map(|p| p.groups.iter().map(|g| group_width(g) + GAP).sum::<u32>() + GAP)
        .max()
        .unwrap_or(0)
        .max(720);
    let width = plot_width + Y_LABELS + 2 * MARGIN;
    let panel_height = 480;
    let height = 40 + panel_height * panels.len() as u32;
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(drawing_error)?;
        let root = root
            .titled("hearth bench: tokens/s by adapter and model, against memory bandwidth", (FONT, 24))
            .map_err(drawing_error)?;
        for (area, p) in root.split_evenly((panels.len(), 1)).iter().zip(&panels) {
            draw_panel(area, p, plot_width)?;
        }
        root.present().map_err(drawing_error)?;
    }
    Ok(out)
}

fn draw_panel<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, p: &Panel, plot_width: u32) -> Result<()> {
    let bars = p.groups.iter().flat_map(|g| &g.bars);
    let top = bars.map(|b| b.record.avg_ts.max(b.roofline.unwrap_or(0.0))).fold(0.0, f64::max);
    let top = if top > 0.0 && top.is_finite() { top * 1.4 } else { 1.0 };
    let mut chart = ChartBuilder::on(area)
        .caption(p.title, (FONT, 19))
        .margin(MARGIN)
        .x_label_area_size(5 * LINE as u32 + 16)
        .y_label_area_size(Y_LABELS)
        .build_cartesian_2d(0.0..plot_width as f64, 0.0..top)
        .map_err(drawing_error)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .max_light_lines(0)
        .x_labels(0)
        .y_desc("tokens/s")
        .label_style((FONT, TEXT))
        .draw()
        .map_err(drawing_error)?;

    // Each bar's slot: [left, right) in the chart's x units (pixels of the plotting area).
    let mut slots: Vec<(f64, &Bar)> = Vec::new();
    let mut group_spans: Vec<(f64, f64, &Group)> = Vec::new();
    let used: f64 = p.groups.iter().map(|g| (group_width(g) + GAP) as f64).sum::<f64>() + GAP as f64;
    let mut x = GAP as f64 + (plot_width as f64 - used).max(0.0) / 2.0;
    for g in &p.groups {
        let w = group_width(g) as f64;
        let bars_left = x + (w - (g.bars.len() as u32 * SLOT) as f64) / 2.0;
        for (i, bar) in g.bars.iter().enumerate() {
            slots.push((bars_left + (i as u32 * SLOT) as f64, bar));
        }
        group_spans.push((x, x + w, g));
        x += w + GAP as f64;
    }
    let slot = SLOT as f64;
    let color = p.color;
    chart
        .draw_series(slots.iter().map(|&(left, b)| {
            Rectangle::new([(left + 0.2 * slot, 0.0), (left + 0.8 * slot, b.record.avg_ts)], color.filled())
        }))
        .map_err(drawing_error)?
        .label(p.legend)
        .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], color.filled()));
    let marks: Vec<(f64, f64)> =
        slots.iter().filter_map(|&(left, b)| b.roofline.map(|r| (left + slot / 2.0, r))).collect();
    if !marks.is_empty() {
        chart
            .draw_series(marks.iter().map(|&(center, r)| {
                PathElement::new(vec![(center - 0.45 * slot, r), (center + 0.45 * slot, r)], ROOFLINE.stroke_width(3))
            }))
            .map_err(drawing_error)?
            .label("roofline: streaming bandwidth ÷ bytes read per token")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], ROOFLINE.stroke_width(3)));
        let above =
            TextStyle::from((FONT, TEXT - 1).into_font()).color(&ROOFLINE).pos(Pos::new(HPos::Center, VPos::Bottom));
        chart
            .draw_series(marks.iter().map(|&(center, r)| {
                // On a white patch, to stay legible where the mark crosses a bar.
                let text = format!("{r:.1}");
                let half = (text.len() as i32 * CHAR as i32) / 2;
                EmptyElement::at((center, r))
                    + Rectangle::new([(-half, -LINE - 3), (half, -3)], WHITE.mix(0.85).filled())
                    + Text::new(text, (0, -4), above.clone())
            }))
            .map_err(drawing_error)?;
    }

    // Under each bar its test (and file, when there are several), its figure and its share of
    // the roofline; under each group its adapter and model.
    let below = TextStyle::from((FONT, TEXT).into_font()).pos(Pos::new(HPos::Center, VPos::Top));
    let mut labels: Vec<(f64, i32, String, TextStyle)> = Vec::new();
    for &(left, b) in &slots {
        let center = left + slot / 2.0;
        let test = if p.several { format!("{} [{}]", b.record.test, b.file) } else { b.record.test.clone() };
        labels.push((center, 4, test, below.clone()));
        labels.push((center, 4 + LINE, format!("{:.1} t/s", b.record.avg_ts), below.clone()));
        if let Some(r) = b.roofline {
            labels.push((center, 4 + 2 * LINE, format!("{:.0}% of roof", 100.0 * b.record.avg_ts / r), below.clone()));
        }
    }
    let bold = TextStyle::from((FONT, TEXT, FontStyle::Bold).into_font()).pos(Pos::new(HPos::Center, VPos::Top));
    for &(left, right, g) in &group_spans {
        let center = (left + right) / 2.0;
        labels.push((center, 8 + 3 * LINE, g.adapter.to_string(), bold.clone()));
        labels.push((center, 8 + 4 * LINE, g.model.to_string(), below.clone()));
    }
    chart
        .draw_series(
            labels.into_iter().map(|(x, dy, text, style)| EmptyElement::at((x, 0.0)) + Text::new(text, (0, dy), style)),
        )
        .map_err(drawing_error)?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font((FONT, TEXT))
        .draw()
        .map_err(drawing_error)?;
    Ok(())
}

/// Draws the chart of `files` into the SVG file at `path`.
pub fn write(path: &Path, files: &[Labeled]) -> Result<()> {
    let svg = svg(files)?;
    std::fs::write(path, svg).map_err(|source| Error::Io { path: path.to_path_buf(), source })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::compare::parse;
    use crate::bench::report;

    fn record(test: &str, ts: f64, adapter: &str, model: &str, bytes_per_token: u64) -> BenchRecord {
        let text = format!(
            r#"{{"hearth_version":"0.1.0","test_time":"t","model_filename":"m.gguf","model_type":"{model}","model_size":1,"model_n_params":2,"model_sha256":"abcdef0123456789","quant":"Q4_1","backends":"vulkan","gpu_info":"{adapter}","driver":"d","paths":"p","os":"linux","n_batch":512,"n_prompt":0,"n_gen":128,"test":"{test}","avg_ns":1,"stddev_ns":0,"avg_ts":{ts},"stddev_ts":0.5,"samples_ns":[1],"samples_ts":[{ts}],"copy_gbps":20.0,"stream_gbps":2.0,"stream_shape":"texture","bytes_per_token":{bytes_per_token},"effective_gbps":1.0,"pct_copy":5.0,"pct_stream":50.0,"gflops":0.0}}"#
        );
        serde_json::from_str(&text).unwrap()
    }

    fn labeled(label: &str, records: &[BenchRecord]) -> Labeled {
        parse(label, &report::json(records)).unwrap()
    }

    /// Elements of the SVG that draw with `attr` (`fill="#1F77B4"`, …) in the colour `color`.
    fn count(svg: &str, element: &str, attr: &str, color: RGBColor) -> usize {
        let needle = format!("{attr}=\"#{:02X}{:02X}{:02X}\"", color.0, color.1, color.2);
        svg.lines().filter(|l| l.trim_start().starts_with(element) && l.contains(&needle)).count()
    }

    #[test]
    fn draws_a_bar_per_record_and_a_roofline_per_generation_test() {
        let a = labeled(
            "a.json",
            &[
                record("pp512", 400.0, "RTX 3090 & co", "llama 135M Q4_1", 0),
                record("tg128", 90.0, "RTX 3090 & co", "llama 135M Q4_1", 20_000_000),
                record("tg32", 95.0, "RTX 3090 & co", "gemma3 1000M Q4_K_M", 40_000_000),
            ],
        );
        let b = labeled("b.json", &[record("tg128", 12.0, "lavapipe", "llama 135M Q4_1", 20_000_000)]);
        let svg = svg(&[a, b]).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(200)]);
        // Adapters (escaped), models and each bar's test and file, as SVG text.
        let names =
            ["RTX 3090 &amp; co", "lavapipe", "llama 135M Q4_1", "gemma3 1000M Q4_K_M", "tg128 [2]", "pp512 [1]"];
        for name in names {
            assert!(svg.contains(&format!("\n{name}\n</text>")), "{name} in\n{svg}");
        }
        // One bar per record, and one swatch of each colour in its panel's legend.
        assert_eq!(count(&svg, "<rect", "fill", DECODE), 3 + 1, "{svg}");
        assert_eq!(count(&svg, "<rect", "fill", PROMPT), 1 + 1, "{svg}");
        assert_eq!(count(&svg, "<polyline", "stroke", ROOFLINE), 3 + 1, "{svg}");
        // 2 GB/s over 20 MB per token allows 100 t/s: the marks are labelled with it.
        assert!(svg.contains("100.0") && svg.contains("50.0") && svg.contains("90% of roof"), "{svg}");
    }

    #[test]
    fn refuses_files_without_generation_or_prompt_results() {
        let other = labeled("x.json", &[record("warmup", 1.0, "gpu", "m", 0)]);
        let err = svg(&[other]).unwrap_err().to_string();
        assert!(err.contains("nothing to chart") && err.contains("x.json"), "{err}");
        let ok = labeled("a.json", &[record("pp64", 10.0, "gpu", "m", 0)]);
        let err = write(Path::new("/nonexistent/dir/chart.svg"), &[ok]).unwrap_err().to_string();
        assert!(err.contains("/nonexistent/dir/chart.svg"), "{err}");
    }
}
