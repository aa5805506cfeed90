//! Pure functions that turn field data into the values ConnectWise stores and compares:
//! MAC addresses in one notation, placeholder serials recognised, dates in one form,
//! text trimmed, names shortened the same way every run.

use time::Date;
use time::macros::format_description;

/// Serials firmware leaves when the vendor filled nothing in; they identify nothing.
const PLACEHOLDER_SERIALS: &[&str] = &[
    "to be filled by o.e.m.",
    "to be filled by oem",
    "default string",
    "system serial number",
    "chassis serial number",
    "not specified",
    "not applicable",
    "none",
    "null",
    "n/a",
    "na",
    "unknown",
    "invalid",
    "serial",
    "0123456789",
    "123456789",
];

pub fn is_placeholder_serial(serial: &str) -> bool {
    let s = serial.trim().to_lowercase();
    s.is_empty()
        || PLACEHOLDER_SERIALS.contains(&s.as_str())
        // "0", "00000000", "xxxxxxxx", "--------": one character repeated.
        || s.chars().all(|c| c == s.chars().next().unwrap_or('0')) && matches!(s.chars().next(), Some('0' | 'x' | '-' | '.' | ' ' | 'f'))
}

/// `aa-bb-cc-dd-ee-ff`, `aabb.ccdd.eeff`, `AABBCCDDEEFF`, … → `AA:BB:CC:DD:EE:FF`.
/// Anything that is not 12 hex digits is not a MAC address.
pub fn mac_address(raw: &str) -> Option<String> {
    let hex: String = raw
        .chars()
        .filter(|c| !matches!(c, ':' | '-' | '.' | ' '))
        .collect();
    if hex.len() != 12 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let hex = hex.to_ascii_uppercase();
    if hex == "000000000000" {
        return None;
    }
    Some(
        hex.as_bytes()
            .chunks(2)
            .map(|pair| String::from_utf8_lossy(pair).into_owned())
            .collect::<Vec<_>>()
            .join(":"),
    )
}

/// Whitespace runs collapsed, ends trimmed, control characters (NUL, the other C0
/// controls, DEL, C1) dropped; `None` when nothing is left. Neither API should ever
/// receive a control character.
pub fn text(raw: &str) -> Option<String> {
    let visible: String = raw
        .chars()
        .filter(|c| !c.is_control() || c.is_whitespace())
        .collect();
    let collapsed = visible.split_whitespace().collect::<Vec<_>>().join(" ");
    (!collapsed.is_empty()).then_some(collapsed)
}

/// A length as ConnectWise measures it: .NET strings and SQL Server `nvarchar` count
/// UTF-16 code units, so an emoji counts two.
pub fn cw_len(text: &str) -> usize {
    text.encode_utf16().count()
}

/// A date or datetime → ConnectWise's `YYYY-MM-DDT00:00:00Z` (the day is what counts).
pub fn date(raw: &str) -> Option<String> {
    calendar_day(raw).map(|day| format!("{day}T00:00:00Z"))
}

/// The calendar day (`YYYY-MM-DD`) a date or timestamp falls on, if it is a real one.
pub fn iso_day(raw: &str) -> Option<String> {
    calendar_day(raw).map(|day| day.to_string())
}

/// The calendar day as `DD/MM/YYYY`, as the spec's sample output shows dates.
pub fn day_month_year(raw: &str) -> Option<String> {
    calendar_day(raw)?
        .format(format_description!("[day]/[month]/[year]"))
        .ok()
}

/// The day of a `YYYY-MM-DD…` value; `2025-02-30` and `2025-13-01` are no days.
fn calendar_day(raw: &str) -> Option<Date> {
    let day = raw.trim().get(0..10)?;
    Date::parse(day, format_description!("[year]-[month]-[day]")).ok()
}

/// A name fitted into `max` as ConnectWise counts ([`cw_len`]). Short names are kept;
/// long ones keep their beginning and end with `~` and four hex digits of a hash of the
/// whole name, so two long names sharing a prefix stay distinct and every run shortens
/// alike. A character is never split.
pub fn shorten(name: &str, max: usize) -> String {
    if cw_len(name) <= max {
        return name.to_string();
    }
    let tag = format!("~{:04x}", fnv1a(name) & 0xffff);
    let budget = max.saturating_sub(tag.len());
    let mut head = String::new();
    let mut used = 0;
    for c in name.chars() {
        if used + c.len_utf16() > budget {
            break;
        }
        used += c.len_utf16();
        head.push(c);
    }
    format!("{}{tag}", head.trim_end())
}

/// FNV-1a: stable across runs, machines and Rust versions (unlike `DefaultHasher`).
pub fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The form two values are compared in: text collapsed, and folded when comparison is
/// case-insensitive.
pub fn comparable(value: &str, case_sensitive: bool) -> String {
    let collapsed = text(value).unwrap_or_default();
    if case_sensitive {
        collapsed
    } else {
        collapsed.to_lowercase()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_addresses_in_every_notation_are_one() {
        for raw in [
            "aa:bb:cc:dd:ee:0f",
            "AA-BB-CC-DD-EE-0F",
            "aabb.ccdd.ee0f",
            "AABBCCDDEE0F",
            " aa bb cc dd ee 0f ",
        ] {
            assert_eq!(
                mac_address(raw).as_deref(),
                Some("AA:BB:CC:DD:EE:0F"),
                "{raw}"
            );
        }
        for bad in [
            "",
            "aa:bb",
            "gg:bb:cc:dd:ee:ff",
            "00:00:00:00:00:00",
            "aa:bb:cc:dd:ee:ff:11",
        ] {
            assert_eq!(mac_address(bad), None, "{bad}");
        }
    }

    #[test]
    fn placeholder_serials() {
        for p in [
            "To be filled by O.E.M.",
            "Default string",
            "0",
            "00000000",
            "",
            "  ",
            "System Serial Number",
            "None",
            "N/A",
            "xxxxxxxx",
        ] {
            assert!(is_placeholder_serial(p), "{p:?}");
        }
        for real in ["5CD1234XYZ", "C02XK0ZZJGH5", "00d0c39f", "0A1"] {
            assert!(!is_placeholder_serial(real), "{real:?}");
        }
    }

    #[test]
    fn shortening_is_stable_and_keeps_names_distinct() {
        let a = "Hewlett Packard Enterprise Development LP, Storage and Networking Division";
        let b = "Hewlett Packard Enterprise Development LP, Storage and Networking Division 2";
        assert_eq!(shorten(a, 50).chars().count(), 50);
        assert_eq!(shorten(a, 50), shorten(a, 50));
        assert_ne!(shorten(a, 50), shorten(b, 50));
        assert_eq!(shorten("Dell Inc.", 50), "Dell Inc.");
        assert_eq!(shorten(&"é".repeat(60), 50).chars().count(), 50);
    }

    #[test]
    fn lengths_are_counted_as_connectwise_counts_them() {
        // 99 letters and one emoji are 101 long in UTF-16; 60 emoji are 120.
        let name = format!("{}🚀", "a".repeat(99));
        assert_eq!(cw_len(&name), 101);
        assert_eq!(cw_len(&shorten(&name, 100)), 100);
        let emoji = "😀".repeat(60);
        let short = shorten(&emoji, 100);
        assert!(cw_len(&short) <= 100, "{}", cw_len(&short));
        assert!(short.starts_with('😀') && short.ends_with(|c: char| c.is_ascii_hexdigit()));
        assert_eq!(shorten(&emoji, 120), emoji, "exactly at the limit is kept");
    }

    #[test]
    fn control_characters_never_pass() {
        assert_eq!(text("pc\u{0}-01\u{7}\u{7f}").as_deref(), Some("pc-01"));
        assert_eq!(text("\u{1b}[31mred\u{9b}").as_deref(), Some("[31mred"));
        assert_eq!(text("\u{0}\u{1}"), None);
        assert_eq!(
            text("tab\tand\nnewline").as_deref(),
            Some("tab and newline")
        );
    }

    #[test]
    fn dates_and_text() {
        assert_eq!(
            date("2025-10-09T07:34:42Z").as_deref(),
            Some("2025-10-09T00:00:00Z")
        );
        assert_eq!(date("2025-10-09").as_deref(), Some("2025-10-09T00:00:00Z"));
        assert_eq!(date("09/10/2025"), None);
        assert_eq!(date("2025-02-30"), None, "February has no 30th");
        assert_eq!(date("2024-02-29").as_deref(), Some("2024-02-29T00:00:00Z"));
        assert_eq!(date("2025-13-01"), None);
        assert_eq!(
            day_month_year("2028-09-30T00:00:00Z").as_deref(),
            Some("30/09/2028")
        );
        assert_eq!(
            iso_day("2028-09-30T00:00:00Z").as_deref(),
            Some("2028-09-30")
        );
        assert_eq!(text("  a \t b\n").as_deref(), Some("a b"));
        assert_eq!(text("   "), None);
        assert_eq!(comparable(" Dell  Inc. ", false), "dell inc.");
    }
}
