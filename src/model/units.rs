//! Units of measure as UN/ECE Recommendation 20 common codes, the codes
//! B2MML's `UnitOfMeasure` and OPC UA's `EUInformation` use. `tags.unit`
//! holds a code: a writer may send the code (`CEL`) or a symbol lotline
//! knows for one (`degC`, `Cel`, `°C`), which is stored as the code, so
//! every system reads one vocabulary. Anything else is refused, naming the
//! value. MTConnect agents' units (`CELSIUS`, `REVOLUTION/MINUTE`) count
//! as symbols. The code list is Recommendation 20 itself (revision 17, from the
//! `cefact-units` crate); codes the recommendation deleted are refused,
//! deprecated ones are still taken (data written against older revisions).

use std::collections::HashMap;
use std::sync::LazyLock;

use cefact_units::{Status, UnitCode};

/// Plant, UCUM and OPC UA display spellings Recommendation 20 does not list as symbols,
/// and symbols it gives more than one code, with the code lotline takes.
const SYMBOLS: &[(&str, &str)] = &[
    ("degC", "CEL"),
    ("Cel", "CEL"),
    ("°C", "CEL"),
    ("degF", "FAH"),
    ("°F", "FAH"),
    ("%", "P1"),
    ("%RH", "P1"),
    ("pct", "P1"),
    ("t", "TNE"),
    ("l", "LTR"),
    ("L", "LTR"),
    ("m3", "MTQ"),
    ("s", "SEC"),
    ("min", "MIN"),
    ("h", "HUR"),
    ("rpm", "RPM"),
    ("N.m", "NU"),
    ("m/min", "2X"),
    ("l/min", "L2"),
    ("l/s", "G51"),
    ("m3/h", "MQH"),
    ("kg/h", "E93"),
    ("kg/min", "F31"),
    ("mPa.s", "C24"),
    ("pcs", "H87"),
    ("pH", "Q30"),
    ("1/min", "C94"),
    ("V", "VLT"),
    ("kWh", "KWH"),
    ("r/min", "RPM"),
];

/// MTConnect's `units` (the standard's DataItem units), as agents send
/// them, with their Recommendation 20 codes.
const MTCONNECT_UNITS: &[(&str, &str)] = &[
    ("AMPERE", "AMP"),
    ("BAR", "BAR"),
    ("CELSIUS", "CEL"),
    ("COUNT", "C62"),
    ("CUBIC_MILLIMETER", "MMQ"),
    ("DECIBEL", "2N"),
    ("DEGREE", "DD"),
    ("DEGREE/SECOND", "E96"),
    ("GRAM", "GRM"),
    ("HERTZ", "HTZ"),
    ("JOULE", "JOU"),
    ("KILOGRAM", "KGM"),
    ("KILOWATT", "KWT"),
    ("KILOWATT_HOUR", "KWH"),
    ("LITER", "LTR"),
    ("LITER/MINUTE", "L2"),
    ("LITER/SECOND", "G51"),
    ("MILLIGRAM", "MGM"),
    ("MILLILITER", "MLT"),
    ("MILLIMETER", "MMT"),
    ("MILLIMETER/MINUTE", "H81"),
    ("MILLIMETER/SECOND", "C16"),
    ("NEWTON", "NEW"),
    ("NEWTON_METER", "NU"),
    ("OHM", "OHM"),
    ("PASCAL", "PAL"),
    ("PASCAL_SECOND", "C65"),
    ("PERCENT", "P1"),
    ("PH", "Q30"),
    ("REVOLUTION/MINUTE", "RPM"),
    ("REVOLUTION/SECOND", "RPS"),
    ("SECOND", "SEC"),
    ("VOLT", "VLT"),
    ("VOLT_AMPERE", "D46"),
    ("VOLT_AMPERE_REACTIVE", "D44"),
    ("WATT", "WTT"),
    ("WATT_SECOND", "J55"),
];

/// Why a unit is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    #[error(
        "is neither a UN/ECE Recommendation 20 common code (such as CEL, BAR, P1, KGM, H87, C94) \
         nor a symbol lotline knows for one (such as degC, bar, %, kg, l/min)"
    )]
    Unknown,
    #[error("is a code UN/ECE Recommendation 20 deleted ({name}); use a current code")]
    Deleted { name: &'static str },
}

/// Recommendation 20's own symbols that name exactly one current code.
static REC20_SYMBOLS: LazyLock<HashMap<&'static str, &'static str>> = LazyLock::new(|| {
    let mut codes: HashMap<&'static str, Vec<&'static str>> = HashMap::new();
    for code in UnitCode::ALL {
        let info = code.info();
        if let (Status::Current, Some(symbol)) = (info.status, info.symbol) {
            codes.entry(symbol).or_default().push(info.code);
        }
    }
    codes
        .into_iter()
        .filter_map(|(symbol, codes)| match codes[..] {
            [code] => Some((symbol, code)),
            _ => None,
        })
        .collect()
});

/// The Recommendation 20 code `unit` names: `unit` itself when it is a
/// code, else the code of a symbol (lotline's table first, then the
/// recommendation's unambiguous symbols). Codes are case-sensitive:
/// `PA` (packet) is not `Pa` (pascal).
pub fn code_of(unit: &str) -> Result<&'static str, UnitError> {
    if let Some(code) = UnitCode::from_code(unit) {
        let info = code.info();
        return match info.status {
            Status::Deleted => Err(UnitError::Deleted { name: info.name }),
            Status::Current | Status::Deprecated => Ok(info.code),
        };
    }
    SYMBOLS
        .iter()
        .chain(MTCONNECT_UNITS)
        .find(|(symbol, _)| *symbol == unit)
        .map(|(_, code)| *code)
        .or_else(|| REC20_SYMBOLS.get(unit).copied())
        .ok_or(UnitError::Unknown)
}

/// The code of `unit` for documents to other systems; a unit stored
/// before codes were enforced that names none is passed on as written.
pub fn unece_code(unit: &str) -> &str {
    code_of(unit).unwrap_or(unit)
}

/// The recommendation's English name of `code` (`degree Celsius`).
pub fn name(code: &str) -> Option<&'static str> {
    UnitCode::from_code(code).map(|c| c.info().name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbols_become_codes_and_codes_stay() {
        assert_eq!(code_of("degC"), Ok("CEL"));
        assert_eq!(code_of("Cel"), Ok("CEL"));
        assert_eq!(code_of("%"), Ok("P1"));
        assert_eq!(code_of("CEL"), Ok("CEL"));
        assert_eq!(code_of("kg"), Ok("KGM"), "a symbol of the recommendation");
        assert_eq!(code_of("bar"), Ok("BAR"));
        assert!(
            matches!(code_of("PA"), Err(UnitError::Deleted { .. })),
            "packet, deleted"
        );
        assert_eq!(code_of("Pa"), Ok("PAL"), "pascal, a symbol");
        assert_eq!(code_of("REVOLUTION/MINUTE"), Ok("RPM"), "MTConnect's units");
        assert_eq!(code_of("bottles/min"), Err(UnitError::Unknown));
        assert_eq!(code_of("cel"), Err(UnitError::Unknown));
        assert!(matches!(code_of("5K"), Err(UnitError::Deleted { .. })));
        assert_eq!(
            code_of("M46"),
            Ok("M46"),
            "a current code without a symbol of ours"
        );
        assert_eq!(unece_code("bottles/min"), "bottles/min");
        assert_eq!(name("CEL"), Some("degree Celsius"));
    }

    #[test]
    fn the_symbols_plants_write_name_the_codes_they_mean() {
        let expected = [
            ("K", "KEL"),
            ("mbar", "MBR"),
            ("kPa", "KPA"),
            ("MPa", "MPA"),
            ("g", "GRM"),
            ("m", "MTR"),
            ("mm", "MMT"),
            ("A", "AMP"),
            ("V", "VLT"),
            ("W", "WTT"),
            ("kW", "KWT"),
            ("kWh", "KWH"),
            ("Hz", "HTZ"),
            ("N", "NEW"),
            ("m/s", "MTS"),
            ("mm/s", "C16"),
            ("kg", "KGM"),
            ("bar", "BAR"),
            ("rpm", "RPM"),
            ("pH", "Q30"),
        ];
        for (symbol, code) in expected {
            assert_eq!(code_of(symbol), Ok(code), "{symbol}");
        }
    }

    #[test]
    fn every_listed_symbol_names_a_current_code_once() {
        let listed: Vec<_> = SYMBOLS.iter().chain(MTCONNECT_UNITS).collect();
        let mut symbols: Vec<&str> = listed.iter().map(|s| s.0).collect();
        symbols.sort_unstable();
        symbols.dedup();
        assert_eq!(symbols.len(), listed.len(), "a symbol is listed once");
        for (symbol, code) in listed {
            let unit = UnitCode::from_code(code).expect("a Recommendation 20 code");
            assert_eq!(unit.status(), Status::Current, "{symbol} -> {code}");
        }
    }
}
