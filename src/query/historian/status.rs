//! OPC UA StatusCodes as the Part 13 aggregates use them, and the status rules
//! shared by several aggregates.
//!
//! A StatusCode (OPC 10000-4 7.39) holds the severity in bits 30-31, the
//! sub-code in bits 16-29 and, when the InfoType (bits 10-11) is `DataValue`,
//! the historian bits in bits 0-4 (Part 13 5.3.3): a 2-bit data location
//! (Raw 0, Calculated 1, Interpolated 2), Partial, ExtraData, MultiValue.
//! Results set InfoType `DataValue` only together with a non-zero historian
//! bit, as the Annex A data do (`Good, Calculated` = `0x00000401`, plain
//! `Good` = `0`).
//!
//! Status rules (5.4.3.2.1): aggregates over raw values count values, those
//! with bounding values weigh the time regions of Good and Bad data. Both end
//! in [`verdict`], which applies PercentDataGood and PercentDataBad.

use super::{Config, RawPoint};

pub const GOOD: u32 = 0x0000_0000;
pub const UNCERTAIN: u32 = 0x4000_0000;
pub const UNCERTAIN_DATA_SUB_NORMAL: u32 = 0x40A4_0000;
pub const BAD: u32 = 0x8000_0000;
pub const BAD_NO_DATA: u32 = 0x809B_0000;

/// InfoType `DataValue`: the low bits hold historian information.
pub const INFO_TYPE_DATA_VALUE: u32 = 0x0400;
pub const CALCULATED: u32 = 0x01;
pub const INTERPOLATED: u32 = 0x02;
pub const PARTIAL: u32 = 0x04;
pub const EXTRA_DATA: u32 = 0x08;
pub const MULTI_VALUE: u32 = 0x10;

const HISTORIAN_BITS: u32 = 0x1F;
const INFO_TYPE_BITS: u32 = 0x0C00;
const SEVERITY_BITS: u32 = 0xC000_0000;
const CODE_BITS: u32 = 0xFFFF_0000;

pub fn is_good(status: u32) -> bool {
    status & SEVERITY_BITS == GOOD
}

pub fn is_uncertain(status: u32) -> bool {
    status & SEVERITY_BITS == UNCERTAIN
}

/// Bad, including the reserved severity `11`.
pub fn is_bad(status: u32) -> bool {
    status & BAD != 0
}

/// Severity and sub-code without the info bits, e.g. `0x40A40000`.
pub fn code(status: u32) -> u32 {
    status & CODE_BITS
}

/// The historian bits of `status` (0 unless the InfoType is `DataValue`).
pub fn historian_bits(status: u32) -> u32 {
    if status & INFO_TYPE_BITS == INFO_TYPE_DATA_VALUE {
        status & HISTORIAN_BITS
    } else {
        0
    }
}

/// `status` with its historian bits replaced by `bits`.
pub fn with_historian_bits(status: u32, bits: u32) -> u32 {
    debug_assert_eq!(bits & !HISTORIAN_BITS, 0, "not a historian bit: {bits:#x}");
    let without = if status & INFO_TYPE_BITS == INFO_TYPE_DATA_VALUE {
        status & !(INFO_TYPE_BITS | HISTORIAN_BITS)
    } else {
        status
    };
    if bits == 0 {
        without
    } else {
        without | INFO_TYPE_DATA_VALUE | bits
    }
}

/// `status` with `bits` added to its historian bits.
pub fn add_historian_bits(status: u32, bits: u32) -> u32 {
    with_historian_bits(status, historian_bits(status) | bits)
}

/// A `Bad_NoData` sample without a value: Part 13's "Point created" marker,
/// which is not a raw value (see the module documentation of `historian`).
pub fn is_placeholder(point: &RawPoint) -> bool {
    point.status == BAD_NO_DATA && point.value.is_none()
}

/// Whether the sample may be used as a value: it has one, and its severity
/// is Good, or Uncertain while Uncertain is not treated as Bad (4.2.1.2).
pub fn counts_as_good(point: &RawPoint, config: &Config) -> bool {
    point.value.is_some()
        && (is_good(point.status) || (is_uncertain(point.status) && !config.treat_uncertain_as_bad))
}

/// The quality of an aggregate from the shares of Good and Bad data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Good,
    Uncertain,
    Bad,
}

/// 5.4.3.2.1: Good when the Good share reaches PercentDataGood, else Bad when
/// the Bad share reaches PercentDataBad, else Uncertain. No data at all is
/// Good (the caller decides whether there is a value).
///
/// When PercentDataGood = 100 - PercentDataBad only the Good test decides:
/// the 1.05 Annex A tables of Historian3 (50/50) show TimeAverage2
/// [12:00:40, 12:00:45), 40 % Good and 60 % Bad, as Uncertain where 1.04 had
/// Bad (Mantis 6227, fixed in 1.05).
pub fn verdict(good: f64, bad: f64, total: f64, config: &Config) -> Verdict {
    debug_assert!(good >= 0.0 && bad >= 0.0 && good + bad <= total * (1.0 + 1e-12));
    if total <= 0.0 || good / total * 100.0 >= f64::from(config.percent_data_good) {
        return Verdict::Good;
    }
    let limits_meet =
        u16::from(config.percent_data_good) + u16::from(config.percent_data_bad) == 100;
    if !limits_meet && bad / total * 100.0 >= f64::from(config.percent_data_bad) {
        Verdict::Bad
    } else {
        Verdict::Uncertain
    }
}

/// The StatusCode of an aggregate computed by counting raw values
/// (5.4.3.2.1): Good and Bad are the samples of that severity, Uncertain ones
/// count for neither. A Bad result is plain `Bad`, without historian bits
/// (Count Historian1 [12:00:32, 12:00:48)).
pub fn counted(samples: &[RawPoint], bits: u32, config: &Config) -> u32 {
    let good = samples.iter().filter(|point| is_good(point.status)).count();
    let bad = samples.iter().filter(|point| is_bad(point.status)).count();
    match verdict(good as f64, bad as f64, samples.len() as f64, config) {
        Verdict::Good => with_historian_bits(GOOD, bits),
        Verdict::Uncertain => with_historian_bits(UNCERTAIN_DATA_SUB_NORMAL, bits),
        Verdict::Bad => BAD,
    }
}

/// The StatusCode of a time-weighted aggregate from the durations of its
/// regions. A Bad result keeps `bits` (`Bad, Calculated`, TimeAverage2
/// Historian2 [12:00:40, 12:00:45)).
pub fn time_weighted(verdict: Verdict, bits: u32) -> u32 {
    let code = match verdict {
        Verdict::Good => GOOD,
        Verdict::Uncertain => UNCERTAIN_DATA_SUB_NORMAL,
        Verdict::Bad => BAD,
    };
    with_historian_bits(code, bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn historian_bits_set_the_info_type_only_when_non_zero() {
        assert_eq!(with_historian_bits(GOOD, CALCULATED), 0x401);
        assert_eq!(with_historian_bits(GOOD, 0), 0);
        assert_eq!(
            add_historian_bits(with_historian_bits(BAD_NO_DATA, 0), PARTIAL),
            0x809B_0404
        );
        assert_eq!(
            with_historian_bits(UNCERTAIN_DATA_SUB_NORMAL, CALCULATED | PARTIAL),
            0x40A4_0405
        );
        assert_eq!(historian_bits(0x0000_0401 | PARTIAL), CALCULATED | PARTIAL);
        assert_eq!(with_historian_bits(0x0000_0403, 0), 0);
    }

    #[test]
    fn severities() {
        assert!(is_good(0x0000_0401));
        assert!(is_uncertain(UNCERTAIN_DATA_SUB_NORMAL));
        assert!(is_bad(BAD_NO_DATA) && is_bad(0xC000_0000));
        assert_eq!(code(0x40A4_0405), UNCERTAIN_DATA_SUB_NORMAL);
    }

    #[test]
    fn verdict_applies_the_limits_in_order() {
        let strict = Config::default();
        assert_eq!(verdict(10.0, 0.0, 10.0, &strict), Verdict::Good);
        assert_eq!(verdict(9.0, 1.0, 10.0, &strict), Verdict::Uncertain);
        assert_eq!(verdict(0.0, 10.0, 10.0, &strict), Verdict::Bad);
        assert_eq!(verdict(0.0, 0.0, 0.0, &strict), Verdict::Good);
        let split = Config {
            percent_data_good: 50,
            percent_data_bad: 50,
            ..strict
        };
        assert_eq!(verdict(5.0, 5.0, 10.0, &split), Verdict::Good);
        assert_eq!(verdict(4.0, 6.0, 10.0, &split), Verdict::Uncertain);
        let loose = Config {
            percent_data_good: 80,
            percent_data_bad: 40,
            ..strict
        };
        assert_eq!(verdict(5.0, 5.0, 10.0, &loose), Verdict::Bad);
        assert_eq!(verdict(7.0, 3.0, 10.0, &loose), Verdict::Uncertain);
    }
}
