//! Tag names made from a source's own names: a collector's `tag_template`
//! (`site1.{group}.{node}.{device}.{metric}` for Sparkplug,
//! `site1.{device}.{name}` for MTConnect) names the points the mapping does
//! not list, so a namespace of thousands of points needs no line each.
//! `/` in a filled-in part becomes `.`, and empty parts are left out.
//! [`PointSet`] holds a collector's mapped points and those its template
//! made as the source declared them.

use std::collections::HashMap;
use std::hash::Hash;

use super::mapping::{Point, TagMeta};
use crate::model::units;

/// A tag name pattern with named places.
#[derive(Debug, Clone, PartialEq)]
pub struct TagTemplate(String);

impl TagTemplate {
    /// Parses `template`, whose places must be among `places` (each written
    /// `{place}`) and must include one of `required`.
    pub fn parse(template: &str, places: &[&str], required: &[&str]) -> Result<Self, String> {
        let written = |place: &&str| template.contains(&format!("{{{place}}}"));
        if !required.iter().any(written) {
            let needed: Vec<String> = required.iter().map(|p| format!("{{{p}}}")).collect();
            return Err(format!("a tag_template needs {}", needed.join(" or ")));
        }
        let mut rest = template.to_string();
        for place in places {
            rest = rest.replace(&format!("{{{place}}}"), "");
        }
        if rest.contains(['{', '}']) {
            let known: Vec<String> = places.iter().map(|p| format!("{{{p}}}")).collect();
            return Err(format!(
                "tag_template '{template}': only {} can be filled in",
                known.join(", ")
            ));
        }
        Ok(Self(template.to_string()))
    }

    /// The tag with every `(place, value)` filled in.
    pub fn render(&self, values: &[(&str, &str)]) -> String {
        let mut filled = self.0.clone();
        for (place, value) in values {
            filled = filled.replace(&format!("{{{place}}}"), &value.replace('/', "."));
        }
        filled
            .split('.')
            .filter(|part| !part.is_empty())
            .collect::<Vec<_>>()
            .join(".")
    }
}

/// The points of one collector: the mapped ones first, then those made
/// for addresses the mapping does not list.
#[derive(Debug)]
pub struct PointSet<A> {
    pub list: Vec<Point<A>>,
    index: HashMap<A, usize>,
}

impl<A: Clone + Eq + Hash> PointSet<A> {
    pub fn new(mapped: &[Point<A>]) -> Self {
        Self {
            index: mapped
                .iter()
                .enumerate()
                .map(|(i, p)| (p.address.clone(), i))
                .collect(),
            list: mapped.to_vec(),
        }
    }

    /// The point of `address`, if there is one.
    pub fn get(&self, address: &A) -> Option<usize> {
        self.index.get(address).copied()
    }

    /// The point of `address`, made as tag `name()` if there is none yet;
    /// `None` when there is none and `name()` gives none (not collected).
    /// The flag tells whether the point was made now.
    pub fn find_or_make(
        &mut self,
        address: &A,
        name: impl FnOnce() -> Option<String>,
    ) -> Option<(usize, bool)> {
        if let Some(i) = self.get(address) {
            return Some((i, false));
        }
        self.list.push(Point {
            address: address.clone(),
            tag: TagMeta {
                name: name()?,
                ..Default::default()
            },
            scale: 1.0,
            offset: 0.0,
        });
        self.index.insert(address.clone(), self.list.len() - 1);
        Some((self.list.len() - 1, true))
    }

    /// Takes the unit the source declared for point `i` unless the mapping
    /// gave one; the tag to upsert into `tags` when the point was `made`
    /// just now or its unit changed, else `None`. `tags.unit` holds
    /// Recommendation 20 codes: a unit that names none is not taken (a
    /// warning names it) rather than stopping the tag's samples.
    pub fn learn_unit(&mut self, i: usize, made: bool, unit: Option<&String>) -> Option<TagMeta> {
        let tag = &mut self.list[i].tag;
        let code = unit.and_then(|unit| match units::code_of(unit) {
            Ok(code) => Some(code.to_string()),
            Err(problem) => {
                tracing::warn!("tag {}: unit '{unit}' {problem}; left unset", tag.name);
                None
            }
        });
        let learned = tag.unit.is_none() && code.is_some();
        if learned {
            tag.unit = code;
        }
        (made || learned).then(|| tag.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLACES: [&str; 3] = ["group", "device", "metric"];

    #[test]
    fn places_fill_in_and_empty_parts_are_left_out() {
        let template =
            TagTemplate::parse("site1.{group}.{device}.{metric}", &PLACES, &["metric"]).unwrap();
        let values = [
            ("group", "plant1"),
            ("device", "press7"),
            ("metric", "Axis/X"),
        ];
        assert_eq!(template.render(&values), "site1.plant1.press7.Axis.X");
        let node = [
            ("group", "plant1"),
            ("device", ""),
            ("metric", "Line/Speed"),
        ];
        assert_eq!(template.render(&node), "site1.plant1.Line.Speed");
    }

    #[test]
    fn unknown_places_and_a_missing_required_one_are_refused() {
        assert_eq!(
            TagTemplate::parse("{group}.{device}", &PLACES, &["metric"]).unwrap_err(),
            "a tag_template needs {metric}"
        );
        let e = TagTemplate::parse("{group}.{nod}.{metric}", &PLACES, &["metric"]).unwrap_err();
        assert!(e.contains("only {group}, {device}, {metric}"), "{e}");
    }
}
