//! An MTConnect observation as lotline stores it: SAMPLE numbers in
//! `value` (other samples, e.g. a 3D `PathPosition`, in `text`), EVENT
//! values in `text`, CONDITION states in `text` with a quality; the agent's
//! `UNAVAILABLE` as BadNoCommunication with no value.
//!
//! Condition quality: `Normal` Good (0), `Warning` Uncertain (0x40000000),
//! `Fault` Bad (0x80000000), `Unavailable` BadNoCommunication; the text is
//! the state in capitals, then the agent's message (`FAULT: Overtravel`).

use super::document::{Category, Observation};
use crate::collect::BAD_NO_COMMUNICATION;

pub const GOOD: u32 = 0;
pub const UNCERTAIN: u32 = 0x4000_0000;
pub const BAD: u32 = 0x8000_0000;

/// The value MTConnect sends when it has none.
const UNAVAILABLE: &str = "UNAVAILABLE";

/// What is stored of one observation.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub value: Option<f64>,
    pub text: Option<String>,
    pub quality: u32,
}

pub fn stored(observation: &Observation) -> Stored {
    let text = observation.text.as_str();
    match observation.category {
        Category::Condition => {
            let quality = match observation.element.as_str() {
                "Normal" => GOOD,
                "Warning" => UNCERTAIN,
                "Fault" => BAD,
                _ => BAD_NO_COMMUNICATION,
            };
            let state = observation.element.to_uppercase();
            Stored {
                value: None,
                text: Some(if text.is_empty() {
                    state
                } else {
                    format!("{state}: {text}")
                }),
                quality,
            }
        }
        _ if text == UNAVAILABLE => Stored {
            value: None,
            text: None,
            quality: BAD_NO_COMMUNICATION,
        },
        Category::Sample => match text.parse::<f64>() {
            Ok(number) => Stored {
                value: Some(number),
                text: None,
                quality: GOOD,
            },
            Err(_) => Stored {
                value: None,
                text: Some(text.to_string()),
                quality: GOOD,
            },
        },
        Category::Event => Stored {
            value: None,
            text: Some(text.to_string()),
            quality: GOOD,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observation(category: Category, element: &str, text: &str) -> Observation {
        Observation {
            data_item_id: "i".into(),
            sequence: 1,
            timestamp_ns: 0,
            element: element.into(),
            category,
            text: text.into(),
        }
    }

    #[test]
    fn samples_events_conditions_and_unavailable() {
        let s = |c, e, t| stored(&observation(c, e, t));
        assert_eq!(
            s(Category::Sample, "Position", "12.5"),
            Stored {
                value: Some(12.5),
                text: None,
                quality: GOOD
            }
        );
        assert_eq!(
            s(Category::Sample, "PathPosition", "1 2 3").text.as_deref(),
            Some("1 2 3")
        );
        assert_eq!(
            s(Category::Event, "Execution", "ACTIVE"),
            Stored {
                value: None,
                text: Some("ACTIVE".into()),
                quality: GOOD
            }
        );
        for category in [Category::Sample, Category::Event] {
            assert_eq!(
                s(category, "X", "UNAVAILABLE"),
                Stored {
                    value: None,
                    text: None,
                    quality: BAD_NO_COMMUNICATION
                }
            );
        }
        assert_eq!(
            s(Category::Condition, "Normal", ""),
            Stored {
                value: None,
                text: Some("NORMAL".into()),
                quality: GOOD
            }
        );
        assert_eq!(
            s(Category::Condition, "Warning", "Low oil").quality,
            UNCERTAIN
        );
        assert_eq!(
            s(Category::Condition, "Fault", "Overtravel")
                .text
                .as_deref(),
            Some("FAULT: Overtravel")
        );
        assert_eq!(
            s(Category::Condition, "Unavailable", "").quality,
            BAD_NO_COMMUNICATION
        );
    }
}
