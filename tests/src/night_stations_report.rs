//! The chart (PNG) and report (markdown) of the Kotabaru night with
//! stations: TPS saved on the PPK offices' laptops ("tersimpan") and
//! acknowledged by the cluster ("terkirim") against the night's clock.

use std::path::Path;

use plotters::prelude::*;
use rekap_client::generate::kotabaru::Night;

use crate::night_report::{clock, curve, finish, frame, register_font};
use crate::night_stations::{DOWN, Outcome};

pub fn chart(o: &Outcome, night: &Night, path: &Path) -> anyhow::Result<()> {
    register_font()?;
    let root = BitMapBackend::new(path, (1280, 720)).into_drawing_area();
    let mut chart = frame(
        &root,
        "Kotabaru with stations: the cluster down 15:00-21:30, the offices keep typing",
        "% of the 892 TPS",
    )?;
    chart
        .draw_series(std::iter::once(Rectangle::new(
            [(DOWN.0, 0.0), (DOWN.1, 100.0)],
            RGBColor(230, 80, 60).mix(0.12).filled(),
        )))?
        .label("every node down")
        .legend(|(x, y)| {
            Rectangle::new(
                [(x, y - 6), (x + 24, y + 6)],
                RGBColor(230, 80, 60).mix(0.3).filled(),
            )
        });
    let n = night.arrivals.len();
    let mut saved: Vec<f64> = o.entries.iter().map(|e| e.tersimpan).collect();
    saved.sort_by(f64::total_cmp);
    let mut sent: Vec<f64> = o.entries.iter().filter_map(|e| e.terkirim).collect();
    sent.sort_by(f64::total_cmp);
    let amber = RGBColor(200, 140, 0);
    chart
        .draw_series(LineSeries::new(curve(&saved, n), amber.stroke_width(3)))?
        .label("tersimpan: saved at the stations")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], amber.stroke_width(3)));
    let green = RGBColor(30, 120, 70);
    chart
        .draw_series(LineSeries::new(curve(&sent, n), green.stroke_width(3)))?
        .label("terkirim: acknowledged by the cluster")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], green.stroke_width(3)));
    finish(&mut chart, &root, SeriesLabelPosition::UpperLeft)
}

pub fn report(o: &Outcome, night: &Night, chart_file: &str) -> String {
    let n = night.arrivals.len();
    let per_min = 12.0 * 60.0 / o.real.as_secs_f64();
    let lost = o.entries.iter().filter(|e| e.terkirim.is_none()).count() + n - o.entries.len();
    let mut s = String::new();
    s += "# The Kotabaru night with stations\n\n";
    s += &format!(
        "{n} TPS in {} kecamatan, one `rekap-station` per kecamatan (its PPK operator, scoped to it), \
         five real nodes, TLS throughout. The night runs 12:00 to 24:00 in {:.0} s of real time \
         ({per_min:.1} minutes of the night per real second). Every node is killed at {} and \
         started again at {}, as the 2020 server was down.\n\n",
        night.kecamatan.len(),
        o.real.as_secs_f64(),
        clock(DOWN.0),
        clock(DOWN.1)
    );
    s += &format!("![tersimpan and terkirim]({chart_file})\n\n| figure | value |\n|---|---|\n");
    s += &format!(
        "| TPS saved at the stations by 21:30 | {} of {n} |\n",
        o.saved_while_down
    );
    s += &format!(
        "| all of those acknowledged after the restart | {:.1} s real ({:.0} minutes of the night) |\n",
        o.caught_up,
        o.caught_up * per_min
    );
    s += &format!("| TPS lost or counted twice | {lost} |\n\n");
    s += "| kecamatan | TPS | last typed | last arrived | lost |\n|---|---|---|---|---|\n";
    for (code, name) in &night.kecamatan {
        let mine: Vec<_> = o.entries.iter().filter(|e| &e.kecamatan == code).collect();
        let typed = mine.iter().map(|e| e.tersimpan).fold(0.0, f64::max);
        let arrived = mine.iter().filter_map(|e| e.terkirim).fold(0.0, f64::max);
        let of = night
            .arrivals
            .iter()
            .filter(|a| &a.kecamatan == code)
            .count();
        let lost = of - mine.iter().filter(|e| e.terkirim.is_some()).count();
        s += &format!(
            "| {name} | {of} | {} | {} | {lost} |\n",
            clock(typed),
            clock(arrived)
        );
    }
    s
}
