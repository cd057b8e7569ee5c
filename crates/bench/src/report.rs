//! `bench report`: one self-contained HTML page (inline SVG, no script, nothing fetched) with a
//! chart of every metric over the stored runs, its target drawn across, and the latest run's
//! table.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::record::Record;
use crate::targets::Target;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A line chart of one metric's medians over runs (with the spread as a band), and the target.
fn chart(records: &[&Record], target: Option<&Target>) -> String {
    const W: f64 = 560.0;
    const H: f64 = 180.0;
    const PAD: f64 = 40.0;
    let values: Vec<f64> = records.iter().map(|r| r.median).collect();
    let mut lo = records
        .iter()
        .map(|r| r.median * (1.0 - r.spread))
        .fold(f64::INFINITY, f64::min);
    let mut hi = records
        .iter()
        .map(|r| r.median * (1.0 + r.spread))
        .fold(f64::NEG_INFINITY, f64::max);
    if let Some(t) = target {
        lo = lo.min(t.value);
        hi = hi.max(t.value);
    }
    if !lo.is_finite() || !hi.is_finite() {
        return String::new();
    }
    if hi - lo < 1e-12 {
        hi += 1.0_f64.max(hi.abs() * 0.1);
        lo -= 1.0_f64.max(lo.abs() * 0.1);
    }
    let n = values.len();
    let x = |i: usize| {
        if n < 2 {
            W / 2.0
        } else {
            PAD + (W - 2.0 * PAD) * i as f64 / (n - 1) as f64
        }
    };
    let y = |v: f64| H - PAD / 2.0 - (H - PAD) * (v - lo) / (hi - lo);
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" role="img">"#
    );
    let _ = write!(
        svg,
        r##"<text x="2" y="{:.1}" font-size="10">{}</text><text x="2" y="{:.1}" font-size="10">{}</text>"##,
        y(hi) + 10.0,
        format_value(hi),
        y(lo),
        format_value(lo)
    );
    // The spread band.
    let upper: Vec<String> = records
        .iter()
        .enumerate()
        .map(|(i, r)| format!("{:.1},{:.1}", x(i), y(r.median * (1.0 + r.spread))))
        .collect();
    let lower: Vec<String> = records
        .iter()
        .enumerate()
        .rev()
        .map(|(i, r)| format!("{:.1},{:.1}", x(i), y(r.median * (1.0 - r.spread))))
        .collect();
    let _ = write!(
        svg,
        r##"<polygon points="{} {}" fill="#9ecae1" fill-opacity="0.4"/>"##,
        upper.join(" "),
        lower.join(" ")
    );
    if let Some(t) = target {
        target_line(&mut svg, t, PAD, W - PAD, y(t.value), W - PAD - 90.0);
    }
    let points: Vec<String> = values
        .iter()
        .enumerate()
        .map(|(i, v)| format!("{:.1},{:.1}", x(i), y(*v)))
        .collect();
    let _ = write!(
        svg,
        r##"<polyline points="{}" fill="none" stroke="#1f77b4" stroke-width="2"/>"##,
        points.join(" ")
    );
    for (i, r) in records.iter().enumerate() {
        let _ = write!(
            svg,
            r##"<circle cx="{:.1}" cy="{:.1}" r="3" fill="#1f77b4"><title>{} {}: {} {}</title></circle><text x="{:.1}" y="{:.1}" font-size="9" text-anchor="middle">{}</text>"##,
            x(i),
            y(r.median),
            escape(&r.commit),
            escape(&r.run),
            format_value(r.median),
            escape(&r.unit),
            x(i),
            H - 2.0,
            escape(&r.commit.chars().take(8).collect::<String>())
        );
    }
    svg.push_str("</svg>");
    svg
}

/// An x-y chart of one curve (x: millions of statements stored; y: the metric), with the target.
fn curve_chart(points: &[[f64; 2]], target: Option<&Target>) -> String {
    const W: f64 = 560.0;
    const H: f64 = 200.0;
    const PAD: f64 = 44.0;
    if points.is_empty() {
        return String::new();
    }
    let x_hi = points.iter().map(|p| p[0]).fold(0.0, f64::max).max(1e-9);
    let mut y_hi = points.iter().map(|p| p[1]).fold(0.0, f64::max);
    if let Some(t) = target {
        y_hi = y_hi.max(t.value);
    }
    let y_hi = y_hi.max(1e-9) * 1.05;
    let x = |v: f64| PAD + (W - 2.0 * PAD) * v / x_hi;
    let y = |v: f64| H - PAD / 2.0 - (H - PAD) * v / y_hi;
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" role="img">"#
    );
    let _ = write!(
        svg,
        r##"<line x1="{PAD}" x2="{:.1}" y1="{:.1}" y2="{:.1}" stroke="#999"/><text x="2" y="{:.1}" font-size="10">{}</text><text x="2" y="{:.1}" font-size="10">0</text><text x="{:.1}" y="{:.1}" font-size="10" text-anchor="end">{} M stored</text>"##,
        W - PAD,
        y(0.0),
        y(0.0),
        y(y_hi) + 10.0,
        format_value(y_hi),
        y(0.0),
        W - PAD,
        H - 2.0,
        format_value(x_hi)
    );
    if let Some(t) = target {
        target_line(&mut svg, t, PAD, W - PAD, y(t.value), PAD + 4.0);
    }
    let line: Vec<String> = points
        .iter()
        .map(|p| format!("{:.1},{:.1}", x(p[0]), y(p[1])))
        .collect();
    let _ = write!(
        svg,
        r##"<polyline points="{}" fill="none" stroke="#2ca02c" stroke-width="2"/>"##,
        line.join(" ")
    );
    svg.push_str("</svg>");
    svg
}

/// A target drawn across a chart from `x1` to `x2` at height `y`, labelled at `label_x`.
fn target_line(svg: &mut String, t: &Target, x1: f64, x2: f64, y: f64, label_x: f64) {
    let _ = write!(
        svg,
        r##"<line x1="{x1}" x2="{x2:.1}" y1="{y:.1}" y2="{y:.1}" stroke="#d62728" stroke-dasharray="4 3"/><text x="{label_x:.1}" y="{:.1}" font-size="10" fill="#d62728">target {} {}</text>"##,
        y - 3.0,
        t.bound.symbol(),
        format_value(t.value)
    );
}

fn format_value(v: f64) -> String {
    if v.abs() >= 1000.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

/// The page: every metric's chart over the stored runs, and the latest run against the targets.
pub fn html(records: &[Record], targets: &[Target]) -> String {
    let mut by_metric: BTreeMap<String, Vec<&Record>> = BTreeMap::new();
    for r in records {
        by_metric.entry(r.key()).or_default().push(r);
    }
    for list in by_metric.values_mut() {
        list.sort_by(|a, b| a.run.cmp(&b.run));
    }
    let latest = crate::record::latest_run(records);
    let verdicts = crate::targets::check(targets, &latest);
    let mut page = String::from(
        "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>learnpulse bench report</title>\
         <style>body{font:14px system-ui,sans-serif;margin:2em;max-width:1200px}\
         .grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(580px,1fr));gap:1em}\
         figure{margin:0;border:1px solid #ddd;padding:.5em}figcaption{font-weight:600}\
         table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:.2em .6em;text-align:right}\
         td:first-child,th:first-child{text-align:left}.no{color:#b00}.yes{color:#070}</style>\
         <h1>learnpulse bench report</h1>",
    );
    if let Some(first) = latest.first() {
        let _ = write!(
            page,
            "<p>Latest run {} at commit <code>{}</code> on {} ({} cores, {}, {} GB). {} runs stored.</p>",
            escape(&first.run),
            escape(&first.commit),
            escape(&first.machine.host),
            first.machine.cores,
            escape(&first.machine.cpu),
            first.machine.memory_gb,
            records
                .iter()
                .map(|r| r.run.as_str())
                .collect::<std::collections::BTreeSet<_>>()
                .len()
        );
    }
    page.push_str("<h2>Targets (latest run)</h2><table><tr><th>metric</th><th>target</th><th>measured</th><th>met</th></tr>");
    for v in &verdicts {
        let _ = write!(
            page,
            "<tr><td>{}</td><td>{} {} {}</td><td>{}</td><td class=\"{}\">{}</td></tr>",
            escape(&v.metric),
            v.bound.symbol(),
            format_value(v.target),
            escape(&v.unit),
            v.measured.map_or("not measured".to_owned(), format_value),
            match v.met {
                Some(true) => "yes",
                Some(false) => "no",
                None => "",
            },
            match v.met {
                Some(true) => "yes",
                Some(false) => "no",
                None => "—",
            }
        );
    }
    page.push_str("</table>");
    let curves: Vec<&Record> = latest.iter().filter(|r| !r.curve.is_empty()).collect();
    if !curves.is_empty() {
        page.push_str("<h2>Curves (latest run)</h2><div class=\"grid\">");
        for r in curves {
            // The curve's own target is the one on its last stretch, when there is one.
            let target = targets
                .iter()
                .find(|t| t.metric.starts_with(&format!("{}/last_", r.suite)))
                .or_else(|| targets.iter().find(|t| t.metric == r.key()));
            let _ = write!(
                page,
                "<figure><figcaption>{} against statements stored ({})</figcaption>{}</figure>",
                escape(&r.key()),
                escape(&r.unit),
                curve_chart(&r.curve, target)
            );
        }
        page.push_str("</div>");
    }
    page.push_str("<h2>Every metric over runs</h2><div class=\"grid\">");
    for (metric, list) in &by_metric {
        let target = targets.iter().find(|t| &t.metric == metric);
        let _ = write!(
            page,
            "<figure><figcaption>{} ({})</figcaption>{}</figure>",
            escape(metric),
            escape(&list[0].unit),
            chart(list, target)
        );
    }
    page.push_str("</div></html>\n");
    page
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Better, Machine, Measurement};
    use crate::targets::Bound;

    #[test]
    fn the_page_is_self_contained_with_a_chart_per_metric() {
        let machine = Machine::this();
        let mut records = Vec::new();
        for (run, commit, v) in [("2026-12-01", "aaa", 100.0), ("2026-12-02", "bbb", 120.0)] {
            for metric in ["xapi_statements_per_second", "xapi_latency_p99_ms"] {
                let mut m = Measurement::new("ingest", metric, "x", Better::Higher);
                m.samples = vec![v, v * 1.1];
                records.push(Record::of(&m, run, commit, &machine));
            }
        }
        let targets = [Target {
            metric: "ingest/xapi_statements_per_second".into(),
            bound: Bound::AtLeast,
            value: 110.0,
            unit: "statements/s".into(),
            why: String::new(),
            command: String::new(),
        }];
        let mut m = Measurement::new("sustained", "statements_per_second", "x", Better::Higher);
        m.samples = vec![50.0, 40.0];
        m.curve = vec![[0.5, 50.0], [1.5, 40.0]];
        records.push(Record::of(&m, "2026-12-02", "bbb", &machine));
        let page = html(&records, &targets);
        // A chart per metric over runs, and the latest run's curve.
        assert_eq!(page.matches("<svg").count(), 4);
        assert!(page.contains("Curves (latest run)"));
        assert!(page.contains("target ≥ 110.0"));
        assert!(page.contains("<td class=\"yes\">yes</td>"), "126 ≥ 110");
        assert!(!page.contains("http://") || !page.contains("<script"));
        assert!(!page.contains("<script"), "no script, nothing fetched");
    }
}
