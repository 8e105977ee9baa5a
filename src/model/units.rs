//! Units of measure as UN/ECE Recommendation 20 common codes, the codes
//! B2MML's `UnitOfMeasure` and OPC UA's `EUInformation` use. `tags.unit`
//! holds what the plant writes (a code, or a symbol such as `degC`, `Cel`
//! or `bar`); documents for other systems carry the code.

/// Symbols (UCUM, SI and plant usage) and their Recommendation 20 codes.
const SYMBOLS: &[(&str, &str)] = &[
    ("degC", "CEL"),
    ("Cel", "CEL"),
    ("°C", "CEL"),
    ("K", "KEL"),
    ("degF", "FAH"),
    ("bar", "BAR"),
    ("mbar", "MBR"),
    ("Pa", "PAL"),
    ("kPa", "KPA"),
    ("MPa", "MPA"),
    ("%", "P1"),
    ("%RH", "P1"),
    ("kg", "KGM"),
    ("g", "GRM"),
    ("t", "TNE"),
    ("l", "LTR"),
    ("L", "LTR"),
    ("m3", "MTQ"),
    ("m", "MTR"),
    ("mm", "MMT"),
    ("s", "SEC"),
    ("min", "MIN"),
    ("h", "HUR"),
    ("A", "AMP"),
    ("V", "VLT"),
    ("W", "WTT"),
    ("kW", "KWT"),
    ("kWh", "KWH"),
    ("Hz", "HTZ"),
    ("rpm", "RPM"),
    ("N", "NEW"),
    ("N.m", "NU"),
    ("m/s", "MTS"),
    ("mm/s", "C16"),
    ("m/min", "2X"),
    ("l/min", "L2"),
    ("m3/h", "MQH"),
    ("kg/h", "E93"),
    ("mPa.s", "C24"),
    ("pcs", "H87"),
    ("pH", "Q30"),
];

/// The Recommendation 20 code of `unit`: its code when it is a known
/// symbol, else `unit` itself (already a code, or a unit Recommendation 20
/// has no code for, such as `bottles/min`).
pub fn unece_code(unit: &str) -> &str {
    SYMBOLS
        .iter()
        .find(|(symbol, _)| *symbol == unit)
        .map_or(unit, |(_, code)| code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbols_become_codes_and_codes_stay() {
        assert_eq!(unece_code("degC"), "CEL");
        assert_eq!(unece_code("Cel"), "CEL");
        assert_eq!(unece_code("%"), "P1");
        assert_eq!(unece_code("CEL"), "CEL");
        assert_eq!(unece_code("bottles/min"), "bottles/min");
        let mut symbols: Vec<&str> = SYMBOLS.iter().map(|s| s.0).collect();
        symbols.sort_unstable();
        symbols.dedup();
        assert_eq!(symbols.len(), SYMBOLS.len(), "a symbol is listed once");
    }
}
