//! Interpolative (5.4.3.4): the interpolated bounding value (3.1.8) at each
//! interval start, sloped or stepped per the variable, extrapolated past the
//! last good sample (stepped unless UseSlopedExtrapolation).
//!
//! A good sample exactly at the start is returned as it is, with its own
//! status and no historian bits (Annex A, Historian1 12:01:10 `Uncertain`);
//! every other value is Interpolated: Good, or Uncertain_DataSubNormal when
//! samples were skipped, an Uncertain one was used or the value is
//! extrapolated; `Bad_NoData` before the first good sample. Never Partial.

use super::bounds;
use super::{Computed, Data, Interval};

pub(super) fn interpolative(data: &Data, window: Interval) -> Computed {
    Computed::sample(bounds::interpolated(
        data,
        window.start,
        data.config.stepped,
    ))
}
