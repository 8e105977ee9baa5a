//! Where an OPC UA collector reads a value: a NodeId in its text form
//! (`ns=2;s=Press1.Temperature`, `ns=3;i=1001`, `ns=1;g=…`, `ns=1;b=…`) or a
//! browse path from the Objects folder in the relative-path syntax of OPC UA
//! Part 4, Annex A (`/2:Line2/2:Oven/2:Temperature`; `/` follows
//! hierarchical references, `.` aggregates, `&` escapes). Browse paths are
//! resolved with TranslateBrowsePathsToNodeIds on every new session, so a
//! server that numbers its nodes anew on restart keeps being read.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use ::opcua::client::Session;
use ::opcua::types::{BrowsePath, NodeId, ObjectId, RelativePath, RelativePathElement, StatusCode};

/// A parsed `source`: the node to read, or the path to find it by.
#[derive(Debug, Clone, PartialEq)]
pub enum Address {
    Node(NodeId),
    Path { text: String, path: RelativePath },
}

impl Address {
    pub fn parse(source: &str) -> Result<Self, String> {
        let source = source.trim();
        if source.starts_with(['/', '.', '<']) {
            let path = RelativePath::from_str(source, &RelativePathElement::default_node_resolver)
                .map_err(|e| {
                    format!("not a browse path ({e:?}; e.g. /2:Line2/2:Oven/2:Temperature)")
                })?;
            let elements = path.elements.as_deref().unwrap_or_default();
            if elements.is_empty() || elements.iter().any(|e| e.target_name.name.is_empty()) {
                return Err("a browse path element without a name".to_string());
            }
            return Ok(Self::Path {
                text: source.to_string(),
                path,
            });
        }
        NodeId::from_str(source).map(Self::Node).map_err(|_| {
            "neither a NodeId (e.g. ns=2;s=Press1.Temperature or ns=3;i=1001) nor a browse path (e.g. /2:Line2/2:Oven/2:Temperature)"
                .to_string()
        })
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Node(node) => write!(f, "{node}"),
            Self::Path { text, .. } => f.write_str(text),
        }
    }
}

/// The node of every address, in order: NodeIds as they are, browse paths
/// as the server resolves them now (the status code of a path it cannot
/// resolve, e.g. BadNoMatch).
pub(super) async fn resolve<'a>(
    session: &Arc<Session>,
    addresses: impl Iterator<Item = &'a Address>,
) -> Result<Vec<Result<NodeId, StatusCode>>, String> {
    let addresses: Vec<&Address> = addresses.collect();
    let paths: Vec<BrowsePath> = addresses
        .iter()
        .filter_map(|a| match a {
            Address::Node(_) => None,
            Address::Path { path, .. } => Some(BrowsePath {
                starting_node: ObjectId::ObjectsFolder.into(),
                relative_path: path.clone(),
            }),
        })
        .collect();
    let mut found = if paths.is_empty() {
        Vec::new()
    } else {
        super::in_slices(&paths, |slice| async move {
            session.translate_browse_paths_to_node_ids(&slice).await
        })
        .await
        .map_err(|e| format!("resolving browse paths: {e}"))?
    }
    .into_iter();
    Ok(addresses
        .into_iter()
        .map(|address| match address {
            Address::Node(node) => Ok(node.clone()),
            Address::Path { .. } => {
                let result = found.next().ok_or(StatusCode::BadUnexpectedError)?;
                if result.status_code.is_bad() {
                    return Err(result.status_code);
                }
                // A path that names more than one node reads the first.
                result
                    .targets
                    .unwrap_or_default()
                    .into_iter()
                    .map(|t| t.target_id.node_id)
                    .next()
                    .ok_or(StatusCode::BadNoMatch)
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_and_browse_paths_parse_and_nonsense_is_refused() {
        assert_eq!(
            Address::parse("ns=2;s=Press1.Temperature").unwrap(),
            Address::Node(NodeId::new(2, "Press1.Temperature"))
        );
        assert_eq!(
            Address::parse("ns=3;i=1001").unwrap(),
            Address::Node(NodeId::new(3, 1001u32))
        );
        let Address::Path { text, path } = Address::parse("/2:Line2/2:Oven/2:Temperature").unwrap()
        else {
            panic!("a browse path")
        };
        assert_eq!(text, "/2:Line2/2:Oven/2:Temperature");
        let names: Vec<String> = path
            .elements
            .unwrap()
            .iter()
            .map(|e| format!("{}:{}", e.target_name.namespace_index, e.target_name.name))
            .collect();
        assert_eq!(names, ["2:Line2", "2:Oven", "2:Temperature"]);
        // A dot inside a name is escaped; unescaped it would follow Aggregates.
        let Address::Path { path, .. } = Address::parse("/2:Press1/2:Press1&.Count").unwrap()
        else {
            panic!("a browse path")
        };
        assert_eq!(
            path.elements.unwrap()[1].target_name.name.as_ref(),
            "Press1.Count"
        );
        assert!(Address::parse("Press1.Temperature").is_err());
        assert!(Address::parse("/").is_err());
    }
}
