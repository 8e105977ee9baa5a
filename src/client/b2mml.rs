//! `lotline load --format b2mml FILE` and `lotline export --format b2mml`:
//! B2MML documents to and from a server over its Flight actions (the same
//! connection, login and TLS as every other command). The server does the
//! work (src/server/b2mml.rs); a refused document fails the command with
//! the element and the problem.

use std::path::Path;

use super::{ClientError, ConnectArgs, connect, run_action};
pub use crate::server::b2mml::PerformanceRequest;
use crate::server::b2mml::{IMPORT_ACTION, PERFORMANCE_ACTION};

/// Sends the B2MML document in `file`; returns the server's `ConfirmBOD`.
pub async fn load(args: &ConnectArgs, file: &Path) -> Result<String, ClientError> {
    let xml = std::fs::read(file).map_err(|e| ClientError::BadFile {
        file: file.display().to_string(),
        message: e.to_string(),
    })?;
    let mut client = connect(args).await?;
    let confirm_bod = run_action(&mut client, IMPORT_ACTION, xml).await?;
    Ok(String::from_utf8_lossy(&confirm_bod).into_owned())
}

/// The `ShowOperationsPerformance` document `request` asks for.
pub async fn export(
    args: &ConnectArgs,
    request: &PerformanceRequest,
) -> Result<String, ClientError> {
    let body = serde_json::to_vec(request).expect("a request serializes");
    let mut client = connect(args).await?;
    let xml = run_action(&mut client, PERFORMANCE_ACTION, body).await?;
    Ok(String::from_utf8_lossy(&xml).into_owned())
}
