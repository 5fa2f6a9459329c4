//! `CreateContainer` and `StatsContainer` (protocol 2.2) between the typed
//! forms and the wire.

use protobuf::MessageField;

use super::spec::{rootfs_from_pb, rootfs_to_pb};
use super::{ConvertError, Result};
use crate::container::{ContainerLog, ContainerStats, CreateContainer};
use crate::pb::agent as pb;

impl From<&CreateContainer> for pb::CreateContainerRequest {
    fn from(c: &CreateContainer) -> Self {
        let log = match &c.log {
            ContainerLog::File(path) => {
                pb::create_container_request::Log::LogPath(path.to_string_lossy().into_owned())
            }
            ContainerLog::Agent => pb::create_container_request::Log::LogToAgent(true),
        };
        pb::CreateContainerRequest {
            container_id: c.container_id.clone(),
            oci_spec: c.oci_spec.clone(),
            rootfs: MessageField::some(rootfs_to_pb(&c.rootfs)),
            log: Some(log),
            ..Default::default()
        }
    }
}

/// Checks and converts a `CreateContainer` request off the wire: the root
/// filesystem and the log are required, a log path must be absolute.
pub fn create_container_from_pb(r: pb::CreateContainerRequest) -> Result<CreateContainer> {
    let rootfs = rootfs_from_pb(r.rootfs.into_option(), "rootfs")?;
    let log = match r.log {
        Some(pb::create_container_request::Log::LogPath(path)) => {
            if !path.starts_with('/') || path.contains('\0') || path.split('/').any(|c| c == "..") {
                return Err(ConvertError::new(
                    "log_path",
                    format!("{path:?} is not an absolute path without .."),
                ));
            }
            ContainerLog::File(path.into())
        }
        Some(pb::create_container_request::Log::LogToAgent(true)) => ContainerLog::Agent,
        Some(pb::create_container_request::Log::LogToAgent(false)) | None => {
            return Err(ConvertError::required("log_path or log_to_agent"))
        }
    };
    Ok(CreateContainer {
        container_id: r.container_id,
        oci_spec: r.oci_spec,
        rootfs,
        log,
    })
}

impl From<&ContainerStats> for pb::StatsContainerResponse {
    fn from(s: &ContainerStats) -> Self {
        pb::StatsContainerResponse {
            cpu_usage_ns: s.cpu_usage_ns,
            memory_usage_bytes: s.memory_usage_bytes,
            pids: s.pids,
            ..Default::default()
        }
    }
}

impl From<pb::StatsContainerResponse> for ContainerStats {
    fn from(s: pb::StatsContainerResponse) -> Self {
        ContainerStats {
            cpu_usage_ns: s.cpu_usage_ns,
            memory_usage_bytes: s.memory_usage_bytes,
            pids: s.pids,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::RootfsSource;

    fn request() -> CreateContainer {
        CreateContainer {
            container_id: "c1".into(),
            oci_spec: br#"{"ociVersion":"1.1.0"}"#.to_vec(),
            rootfs: RootfsSource::BlockSerial {
                serial: "img".into(),
                fstype: "erofs".into(),
            },
            log: ContainerLog::File("/var/log/c1.log".into()),
        }
    }

    #[test]
    fn round_trip() {
        for log in [ContainerLog::Agent, ContainerLog::File("/x.log".into())] {
            let c = CreateContainer { log, ..request() };
            let wire = pb::CreateContainerRequest::from(&c);
            assert_eq!(create_container_from_pb(wire).unwrap(), c);
        }
        let stats = ContainerStats {
            cpu_usage_ns: Some(5),
            memory_usage_bytes: None,
            pids: Some(1),
        };
        assert_eq!(
            ContainerStats::from(pb::StatsContainerResponse::from(&stats)),
            stats
        );
    }

    #[test]
    fn missing_and_bad_fields_are_named() {
        let mut wire = pb::CreateContainerRequest::from(&request());
        wire.log = None;
        let e = create_container_from_pb(wire.clone()).unwrap_err();
        assert_eq!(e.field, "log_path or log_to_agent");
        wire.log = Some(pb::create_container_request::Log::LogToAgent(false));
        assert!(create_container_from_pb(wire.clone()).is_err());
        wire.log = Some(pb::create_container_request::Log::LogPath("rel.log".into()));
        assert_eq!(
            create_container_from_pb(wire.clone()).unwrap_err().field,
            "log_path"
        );
        wire.log = Some(pb::create_container_request::Log::LogToAgent(true));
        wire.rootfs = MessageField::none();
        assert_eq!(create_container_from_pb(wire).unwrap_err().field, "rootfs");
    }
}
