//! The Kotabaru night's chart (PNG, plotters) and markdown report: the
//! share of TPS in against the night's clock, per kecamatan and in total,
//! beside what the 2020 office had (about 6% at 21:30).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use rekap_client::generate::kotabaru::Night;

use crate::night::Outcome;

/// 2020: about 6% of TPS in the system at 21:30.
pub const REALITY_2020: (f64, f64) = (21.5, 6.0);

/// Where a night writes its chart and report: `REKAP_NIGHT_OUT`, else
/// `default` (a scenario's folder under its target tmp dir).
pub fn out_dir(default: PathBuf) -> PathBuf {
    let dir = std::env::var("REKAP_NIGHT_OUT")
        .map(PathBuf::from)
        .unwrap_or(default);
    std::fs::create_dir_all(&dir).expect("output folder");
    dir
}

pub fn clock(hour: f64) -> String {
    let m = (hour * 60.0).round() as i64;
    format!("{:02}:{:02}", m / 60, m % 60)
}

/// Hours at which each kecamatan's acknowledgements came, sorted.
fn by_kecamatan(o: &Outcome) -> BTreeMap<&str, Vec<f64>> {
    let mut m: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for a in &o.acks {
        m.entry(a.kecamatan.as_str()).or_default().push(a.hour);
    }
    for v in m.values_mut() {
        v.sort_by(f64::total_cmp);
    }
    m
}

/// The share in (%) over the night: a step at each acknowledgement.
pub(crate) fn curve(hours: &[f64], of: usize) -> Vec<(f64, f64)> {
    let mut pts = vec![(12.0, 0.0)];
    for (i, h) in hours.iter().enumerate() {
        pts.push((*h, 100.0 * i as f64 / of as f64));
        pts.push((*h, 100.0 * (i + 1) as f64 / of as f64));
    }
    pts.push((24.0, 100.0 * hours.len() as f64 / of as f64));
    pts
}

/// Plotters draws text with a font it is given (no system font lookup).
pub(crate) fn register_font() -> anyhow::Result<()> {
    static DONE: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    if DONE.get().is_some() {
        return Ok(());
    }
    let path = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
    let bytes = std::fs::read(path).map_err(|e| {
        anyhow::anyhow!("{path}: {e} (Debian's fonts-dejavu-core; tests/run.sh installs it)")
    })?;
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
        .map_err(|_| anyhow::anyhow!("{path} is not a font plotters can use"))?;
    let _ = DONE.set(());
    Ok(())
}

/// A night's chart area: white, the clock (12:00 to 24:00, WITA) across,
/// a share (0 to 100%) up.
pub(crate) fn frame<'a, 'b>(
    root: &'b DrawingArea<BitMapBackend<'a>, Shift>,
    caption: &str,
    y_desc: &str,
) -> anyhow::Result<ChartContext<'b, BitMapBackend<'a>, Cartesian2d<RangedCoordf64, RangedCoordf64>>>
{
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(root)
        .caption(caption, ("sans-serif", 24))
        .margin(20)
        .x_label_area_size(45)
        .y_label_area_size(55)
        .build_cartesian_2d(12.0f64..24.0, 0.0f64..100.0)?;
    chart
        .configure_mesh()
        .x_desc("the night's clock (WITA)")
        .y_desc(y_desc)
        .x_labels(13)
        .x_label_formatter(&|h| clock(*h))
        .draw()?;
    Ok(chart)
}

pub fn chart(o: &Outcome, night: &Night, path: &Path) -> anyhow::Result<()> {
    register_font()?;
    let root = BitMapBackend::new(path, (1280, 720)).into_drawing_area();
    let mut chart = frame(
        &root,
        "Kotabaru, Pilkada night: share of the 892 TPS in Rekap",
        "% of TPS in",
    )?;
    let per = by_kecamatan(o);
    let sizes: BTreeMap<&str, usize> = night.arrivals.iter().fold(BTreeMap::new(), |mut m, a| {
        *m.entry(a.kecamatan.as_str()).or_default() += 1;
        m
    });
    for (i, (kec, hours)) in per.iter().enumerate() {
        let color = Palette99::pick(i).mix(0.45);
        let s = chart.draw_series(LineSeries::new(
            curve(hours, sizes[kec]),
            color.stroke_width(1),
        ))?;
        if i == 0 {
            s.label("each kecamatan")
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], color));
        }
    }
    let mut all: Vec<f64> = o.acks.iter().map(|a| a.hour).collect();
    all.sort_by(f64::total_cmp);
    chart
        .draw_series(LineSeries::new(
            curve(&all, night.arrivals.len()),
            BLACK.stroke_width(3),
        ))?
        .label("all of Kotabaru, with Rekap")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], BLACK.stroke_width(3)));
    for f in &o.faults {
        let grey = RGBColor(200, 60, 60).mix(0.6);
        chart.draw_series(LineSeries::new(
            vec![(f.hour, 0.0), (f.hour, 100.0)],
            grey.stroke_width(2),
        ))?;
        chart.draw_series(std::iter::once(Text::new(
            format!(
                "{} {}",
                clock(f.hour),
                f.what.split(',').next().unwrap_or("")
            ),
            (
                f.hour + 0.05,
                97.0 - 4.0 * o.faults.iter().position(|g| g.hour == f.hour).unwrap_or(0) as f64,
            ),
            ("sans-serif", 14).into_font().color(&RED),
        )))?;
    }
    chart.draw_series(std::iter::once(Text::new(
        "2020: about 6% at 21:30".to_string(),
        (REALITY_2020.0 + 0.12, REALITY_2020.1 + 1.0),
        ("sans-serif", 16).into_font().color(&RED),
    )))?;
    finish(&mut chart, &root, SeriesLabelPosition::MiddleLeft)
}

/// What every night's chart ends with: 2020's point (about 6% in at
/// 21:30, one server), the legend at `legend`, and the file written.
pub(crate) fn finish<'a, 'b>(
    chart: &mut ChartContext<'b, BitMapBackend<'a>, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    root: &'b DrawingArea<BitMapBackend<'a>, Shift>,
    legend: SeriesLabelPosition,
) -> anyhow::Result<()> {
    chart
        .draw_series(std::iter::once(Circle::new(REALITY_2020, 7, RED.filled())))?
        .label("2020, one server: about 6% in at 21:30")
        .legend(|(x, y)| Circle::new((x + 12, y), 5, RED.filled()));
    chart
        .configure_series_labels()
        .position(legend)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font(("sans-serif", 16))
        .draw()?;
    root.present()?;
    Ok(())
}

/// What the report says about the cluster after the night.
pub struct Checks {
    /// Node, applied index, chain head.
    pub chains: Vec<(u64, u64, String)>,
    /// Node, kecamatan at 100% on its dashboard API / all kecamatan.
    pub dashboards: Vec<(u64, usize, usize)>,
}

pub fn report(o: &Outcome, night: &Night, checks: &Checks, chart_file: &str) -> String {
    let n = night.arrivals.len();
    let share_at = |h: f64| 100.0 * o.acks.iter().filter(|a| a.hour <= h).count() as f64 / n as f64;
    let last = o.acks.iter().map(|a| a.hour).fold(0.0, f64::max);
    let (gap_s, gap_min, gap_end) = o.longest_gap();
    let mut s = String::new();
    s += "# The Kotabaru night, replayed\n\n";
    s += &format!(
        "{n} TPS in {} kecamatan, contest `BUPATI-KOTABARU`, on a cluster of real `rekap-node` processes \
         (TLS, RocksDB) on loopback. The night's clock runs 12:00 to 24:00 in {:.0} s of real time \
         (one real second is {:.1} minutes of the night). Five offices submit, each through its own node first.\n\n",
        night.kecamatan.len(),
        o.real.as_secs_f64(),
        12.0 * 60.0 / o.real.as_secs_f64()
    );
    s += &format!("![share of TPS in]({chart_file})\n\n");
    s += "| the night's clock | fault |\n|---|---|\n";
    for f in &o.faults {
        s += &format!("| {} | {} |\n", clock(f.hour), f.what);
    }
    s += "\n| figure | value |\n|---|---|\n";
    s += &format!("| TPS in at 15:00 | {:.1}% |\n", share_at(15.0));
    s += &format!(
        "| TPS in at 21:30 | {:.1}% (2020, one server: about 6%) |\n",
        share_at(21.5)
    );
    s += &format!("| every TPS in at | {} |\n", clock(last));
    s += &format!(
        "| longest stretch without an acknowledgement | {gap_s:.2} s real, {gap_min:.1} minutes of the night, ending {} |\n",
        clock(gap_end)
    );
    let (w_s, w_min, w_at) = o.longest_wait();
    s += &format!(
        "| longest any operator waited for an acknowledgement | {w_s:.2} s real, {w_min:.1} minutes of the night, acknowledged {} |\n",
        clock(w_at)
    );
    s += &format!(
        "| submissions that failed for good | {} |\n\n",
        o.failed.len()
    );
    s += "| kecamatan | TPS | 50% in at | 100% in at |\n|---|---|---|---|\n";
    for (code, name) in &night.kecamatan {
        let mut hours: Vec<f64> = o
            .acks
            .iter()
            .filter(|a| &a.kecamatan == code)
            .map(|a| a.hour)
            .collect();
        hours.sort_by(f64::total_cmp);
        let of = night
            .arrivals
            .iter()
            .filter(|a| &a.kecamatan == code)
            .count();
        let half = hours
            .get(of.div_ceil(2).saturating_sub(1))
            .map_or("-".into(), |h| clock(*h));
        let full = if hours.len() == of {
            hours.last().map_or("-".into(), |h| clock(*h))
        } else {
            "never".into()
        };
        s += &format!("| {name} | {of} | {half} | {full} |\n");
    }
    s += "\n| node | applied index | audit chain head |\n|---|---|---|\n";
    for (id, idx, head) in &checks.chains {
        s += &format!("| {id} | {idx} | `{head}` |\n");
    }
    s += "\n| node | dashboard: kecamatan at 100% |\n|---|---|\n";
    for (id, done, all) in &checks.dashboards {
        s += &format!("| {id} | {done} of {all} |\n");
    }
    s += "\n![the kabupaten's dashboard after the night](kotabaru-dashboard.png)\n";
    s
}
