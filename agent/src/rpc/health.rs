//! The `Health` service: liveness and the version exchange every client
//! does first on a connection.

use podvm_proto::pb::agent as pb;
use podvm_proto::pb::agent_ttrpc::Health;
use podvm_proto::{Compatibility, PROTOCOL_MAJOR, PROTOCOL_MINOR};
use ttrpc::{Code, TtrpcContext};

use super::status::rpc_error;
use crate::console::say;

/// Most characters of a client's self-description that are logged.
const MAX_CLIENT_NAME: usize = 128;

/// See the module documentation.
pub struct HealthService;

impl Health for HealthService {
    fn check(
        &self,
        _ctx: &TtrpcContext,
        _req: pb::CheckRequest,
    ) -> ttrpc::Result<pb::CheckResponse> {
        Ok(pb::CheckResponse {
            status: pb::check_response::ServingStatus::SERVING.into(),
            ..Default::default()
        })
    }

    fn version(
        &self,
        _ctx: &TtrpcContext,
        req: pb::VersionRequest,
    ) -> ttrpc::Result<pb::VersionResponse> {
        say!(
            "client {:?} speaks protocol {}.{}",
            printable(&req.client),
            req.protocol_major,
            req.protocol_minor
        );
        version_answer(&req).map_err(|why| rpc_error(Code::FAILED_PRECONDITION, why))
    }
}

/// This agent's versions, or the refusal of a client of another major
/// version (naming both).
pub fn version_answer(req: &pb::VersionRequest) -> Result<pb::VersionResponse, String> {
    let compatibility = Compatibility::of(req.protocol_major, req.protocol_minor);
    if let Some(why) = compatibility.refusal("the client") {
        say!("refusing the client: {why}");
        return Err(why);
    }
    Ok(pb::VersionResponse {
        protocol_major: PROTOCOL_MAJOR,
        protocol_minor: PROTOCOL_MINOR,
        agent_version: env!("CARGO_PKG_VERSION").to_string(),
        ..Default::default()
    })
}

/// A client-supplied name made safe for the console: no control
/// characters, bounded length.
fn printable(name: &str) -> String {
    name.chars()
        .filter(|c| !c.is_control())
        .take(MAX_CLIENT_NAME)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(major: u32, minor: u32) -> pb::VersionRequest {
        pb::VersionRequest {
            protocol_major: major,
            protocol_minor: minor,
            client: "test".into(),
            ..Default::default()
        }
    }

    #[test]
    fn same_major_is_answered_other_major_refused() {
        let answer = version_answer(&request(PROTOCOL_MAJOR, PROTOCOL_MINOR + 5)).unwrap();
        assert_eq!(
            (answer.protocol_major, answer.protocol_minor),
            (PROTOCOL_MAJOR, PROTOCOL_MINOR)
        );
        assert_eq!(answer.agent_version, env!("CARGO_PKG_VERSION"));
        let why = version_answer(&request(PROTOCOL_MAJOR + 1, 3)).unwrap_err();
        assert!(why.contains(&format!("{}.3", PROTOCOL_MAJOR + 1)), "{why}");
        assert!(
            why.contains(&format!("{PROTOCOL_MAJOR}.{PROTOCOL_MINOR}")),
            "{why}"
        );
    }

    #[test]
    fn client_names_are_made_printable() {
        assert_eq!(printable("podvm 0.1\n\u{1b}[31m"), "podvm 0.1[31m");
        assert_eq!(printable(&"x".repeat(1000)).len(), MAX_CLIENT_NAME);
    }
}
