//! Indonesia's three time zones, by provinsi, so that a time is shown as the
//! office reading it keeps it: a Kotabaru TPS's revision in WITA, Jakarta's
//! in WIB, Jayapura's in WIT. Shared by the node (the dashboard) and the
//! client (`rekapctl history`).
//!
//! Source: Keputusan Presiden Nomor 41 Tahun 1987 tentang Pembagian Wilayah
//! Republik Indonesia menjadi 3 (tiga) Wilayah Waktu: WIB (UTC+7) for
//! Sumatera, Jawa, Kalimantan Barat and Kalimantan Tengah; WITA (UTC+8) for
//! Kalimantan Selatan and Timur, Bali, Nusa Tenggara and Sulawesi; WIT
//! (UTC+9) for Maluku and Papua. Provinsi formed since keep the zone of the
//! one they were split from (Kalimantan Utara 2012; Papua Barat Daya,
//! Selatan, Tengah and Pegunungan 2022). Anything else (Luar Negeri, a
//! synthetic registry) is shown in WIB, KPU RI's clock in Jakarta.

use time::{OffsetDateTime, UtcOffset};

/// One of Indonesia's time zones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zone {
    Wib,
    Wita,
    Wit,
}

/// Provinsi by name as KPU writes them (and the names they also go by).
const BY_NAME: &[(&str, Zone)] = &[
    ("ACEH", Zone::Wib),
    ("NANGGROE ACEH DARUSSALAM", Zone::Wib),
    ("SUMATERA UTARA", Zone::Wib),
    ("SUMATERA BARAT", Zone::Wib),
    ("RIAU", Zone::Wib),
    ("JAMBI", Zone::Wib),
    ("SUMATERA SELATAN", Zone::Wib),
    ("BENGKULU", Zone::Wib),
    ("LAMPUNG", Zone::Wib),
    ("KEPULAUAN BANGKA BELITUNG", Zone::Wib),
    ("BANGKA BELITUNG", Zone::Wib),
    ("KEPULAUAN RIAU", Zone::Wib),
    ("DKI JAKARTA", Zone::Wib),
    ("JAWA BARAT", Zone::Wib),
    ("JAWA TENGAH", Zone::Wib),
    ("DAERAH ISTIMEWA YOGYAKARTA", Zone::Wib),
    ("DI YOGYAKARTA", Zone::Wib),
    ("JAWA TIMUR", Zone::Wib),
    ("BANTEN", Zone::Wib),
    ("KALIMANTAN BARAT", Zone::Wib),
    ("KALIMANTAN TENGAH", Zone::Wib),
    ("BALI", Zone::Wita),
    ("NUSA TENGGARA BARAT", Zone::Wita),
    ("NUSA TENGGARA TIMUR", Zone::Wita),
    ("KALIMANTAN SELATAN", Zone::Wita),
    ("KALIMANTAN TIMUR", Zone::Wita),
    ("KALIMANTAN UTARA", Zone::Wita),
    ("SULAWESI UTARA", Zone::Wita),
    ("SULAWESI TENGAH", Zone::Wita),
    ("SULAWESI SELATAN", Zone::Wita),
    ("SULAWESI TENGGARA", Zone::Wita),
    ("GORONTALO", Zone::Wita),
    ("SULAWESI BARAT", Zone::Wita),
    ("MALUKU", Zone::Wit),
    ("MALUKU UTARA", Zone::Wit),
    ("PAPUA", Zone::Wit),
    ("PAPUA BARAT", Zone::Wit),
    ("PAPUA BARAT DAYA", Zone::Wit),
    ("PAPUA SELATAN", Zone::Wit),
    ("PAPUA TENGAH", Zone::Wit),
    ("PAPUA PEGUNUNGAN", Zone::Wit),
];

impl Zone {
    /// The zone's name as Indonesians write it after a time.
    pub fn name(self) -> &'static str {
        match self {
            Zone::Wib => "WIB",
            Zone::Wita => "WITA",
            Zone::Wit => "WIT",
        }
    }

    /// Minutes east of UTC.
    pub fn offset_minutes(self) -> i32 {
        match self {
            Zone::Wib => 7 * 60,
            Zone::Wita => 8 * 60,
            Zone::Wit => 9 * 60,
        }
    }

    /// The zone named `name` ("WIB", "WITA", "WIT").
    pub fn from_name(name: &str) -> Option<Zone> {
        [Zone::Wib, Zone::Wita, Zone::Wit]
            .into_iter()
            .find(|z| z.name().eq_ignore_ascii_case(name))
    }

    /// The zone of a provinsi, by its name, else by its Kemendagri code
    /// (`63`, or a code that starts `63.`); WIB when neither is known. The
    /// name goes first: registries built from names (the 2019 file) number
    /// their provinsi in their own order.
    pub fn of_provinsi(code: &str, name: &str) -> Zone {
        let name = name
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_ascii_uppercase();
        let name = name.strip_prefix("PROVINSI ").unwrap_or(&name);
        if let Some((_, z)) = BY_NAME.iter().find(|(n, _)| *n == name) {
            return *z;
        }
        let kemendagri = code.split('.').next().unwrap_or("");
        match kemendagri.parse::<u8>() {
            Ok(11..=19 | 21 | 31..=36 | 61 | 62) => Zone::Wib,
            Ok(51..=53 | 63..=65 | 71..=76) => Zone::Wita,
            Ok(81 | 82 | 91..=96) => Zone::Wit,
            _ => Zone::Wib,
        }
    }

    /// The zone of the last region of `lineage` (nasional first, as the
    /// tally lists it): its provinsi's; WIB above a provinsi.
    pub fn of_lineage(lineage: &[crate::pb::Region]) -> Zone {
        lineage
            .iter()
            .find(|r| r.level == crate::pb::RegionLevel::Provinsi as i32)
            .map_or(Zone::Wib, |p| Zone::of_provinsi(&p.code, &p.name))
    }

    /// `at_ms` (Unix ms) as a time in this zone; None for 0 (unknown) or a
    /// time out of range.
    pub fn local(self, at_ms: i64) -> Option<OffsetDateTime> {
        if at_ms == 0 {
            return None;
        }
        let utc = OffsetDateTime::from_unix_timestamp_nanos(i128::from(at_ms) * 1_000_000).ok()?;
        let offset = UtcOffset::from_whole_seconds(self.offset_minutes() * 60).ok()?;
        Some(utc.to_offset(offset))
    }

    /// `at_ms` as an office reads it: "9 Des 2020 19.42.05 WITA"; "-" when
    /// unknown.
    pub fn show(self, at_ms: i64) -> String {
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "Mei", "Jun", "Jul", "Agu", "Sep", "Okt", "Nov", "Des",
        ];
        match self.local(at_ms) {
            None => "-".into(),
            Some(t) => format!(
                "{} {} {} {:02}.{:02}.{:02} {}",
                t.day(),
                MONTHS[usize::from(u8::from(t.month())) - 1],
                t.year(),
                t.hour(),
                t.minute(),
                t.second(),
                self.name()
            ),
        }
    }
}

/// `at_ms` as RFC 3339 in UTC with milliseconds ("2020-12-09T11:42:05.123Z"),
/// as exports write it; empty when unknown.
pub fn rfc3339_utc(at_ms: i64) -> String {
    if at_ms == 0 {
        return String::new();
    }
    let Ok(t) = OffsetDateTime::from_unix_timestamp_nanos(i128::from(at_ms) * 1_000_000) else {
        return String::new();
    };
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 9 December 2020, 11:42:05.123 UTC: the 2020 Pilkada's evening.
    const AT: i64 = 1_607_514_125_123;

    #[test]
    fn a_kotabaru_time_is_shown_in_wita() {
        let z = Zone::of_provinsi("63", "KALIMANTAN SELATAN");
        assert_eq!(z, Zone::Wita);
        assert_eq!(z.show(AT), "9 Des 2020 19.42.05 WITA");
        assert_eq!(Zone::Wib.show(AT), "9 Des 2020 18.42.05 WIB");
        assert_eq!(Zone::Wit.show(AT), "9 Des 2020 20.42.05 WIT");
        assert_eq!(Zone::Wita.show(0), "-");
        assert_eq!(rfc3339_utc(AT), "2020-12-09T11:42:05.123Z");
        assert_eq!(rfc3339_utc(0), "");
    }

    #[test]
    fn a_provinsi_is_found_by_name_before_its_code() {
        // The 2019 file's registry numbers provinsi in name order: its
        // "63" need not be Kalimantan Selatan.
        assert_eq!(Zone::of_provinsi("01", "ACEH"), Zone::Wib);
        assert_eq!(Zone::of_provinsi("63", "PAPUA"), Zone::Wit);
        assert_eq!(
            Zone::of_provinsi("x", "Provinsi  Sulawesi   Selatan"),
            Zone::Wita
        );
        // By Kemendagri code when the name says nothing.
        assert_eq!(Zone::of_provinsi("64", "PROVINSI 64"), Zone::Wita);
        assert_eq!(Zone::of_provinsi("94.01", ""), Zone::Wit);
        assert_eq!(Zone::of_provinsi("62", ""), Zone::Wib);
        // Overseas and unknown: Jakarta's clock.
        assert_eq!(Zone::of_provinsi("35", "Luar Negeri"), Zone::Wib);
        assert_eq!(Zone::of_provinsi("99", "LUAR NEGERI"), Zone::Wib);
    }

    #[test]
    fn every_provinsi_of_the_2019_file_is_named() {
        for name in [
            "ACEH",
            "BALI",
            "BANTEN",
            "BENGKULU",
            "DAERAH ISTIMEWA YOGYAKARTA",
            "DKI JAKARTA",
            "GORONTALO",
            "JAMBI",
            "JAWA BARAT",
            "JAWA TENGAH",
            "JAWA TIMUR",
            "KALIMANTAN BARAT",
            "KALIMANTAN SELATAN",
            "KALIMANTAN TENGAH",
            "KALIMANTAN TIMUR",
            "KALIMANTAN UTARA",
            "KEPULAUAN BANGKA BELITUNG",
            "KEPULAUAN RIAU",
            "LAMPUNG",
            "MALUKU",
            "MALUKU UTARA",
            "NUSA TENGGARA BARAT",
            "NUSA TENGGARA TIMUR",
            "PAPUA",
            "PAPUA BARAT",
            "RIAU",
            "SULAWESI BARAT",
            "SULAWESI SELATAN",
            "SULAWESI TENGAH",
            "SULAWESI TENGGARA",
            "SULAWESI UTARA",
            "SUMATERA BARAT",
            "SUMATERA SELATAN",
            "SUMATERA UTARA",
        ] {
            assert!(BY_NAME.iter().any(|(n, _)| *n == name), "{name}");
        }
        assert_eq!(BY_NAME.iter().filter(|(_, z)| *z == Zone::Wit).count(), 8);
    }
}
