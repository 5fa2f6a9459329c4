//! Probes and lifecycle hooks as the agent takes them: Kubernetes'
//! defaults applied (a zero or unset timing takes its default, as the API
//! server's defaulting does), named ports resolved to the container's port
//! numbers, an `httpGet` path made absolute.

use anyhow::{anyhow, bail, Result};
use k8s_openapi::api::core::v1::{self as k8s, Container};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use podvm_proto::{HookAction, HttpGet, HttpScheme, Lifecycle, Probe, ProbeAction};

/// Converts a validated probe (`path` names it in errors).
pub fn probe(p: &k8s::Probe, c: &Container, path: &str) -> Result<Probe> {
    let action = if let Some(e) = &p.exec {
        ProbeAction::Exec {
            command: e.command.clone().unwrap_or_default(),
        }
    } else if let Some(g) = &p.http_get {
        ProbeAction::HttpGet(http_get(g, c, &format!("{path}.httpGet"))?)
    } else if let Some(t) = &p.tcp_socket {
        ProbeAction::TcpSocket {
            host: t.host.clone().filter(|h| !h.is_empty()),
            port: port(&t.port, c, &format!("{path}.tcpSocket.port"))?,
        }
    } else if let Some(g) = &p.grpc {
        ProbeAction::Grpc {
            port: u16::try_from(g.port)
                .map_err(|_| anyhow!("{path}.grpc.port: Invalid value: {}", g.port))?,
            service: g.service.clone().filter(|s| !s.is_empty()),
        }
    } else {
        bail!("{path}: Required value: must specify a handler type");
    };
    let mut out = Probe::with_defaults(action);
    let positive = |v: Option<i32>| v.and_then(|v| u32::try_from(v).ok()).filter(|v| *v > 0);
    if let Some(v) = positive(p.initial_delay_seconds) {
        out.initial_delay_seconds = v;
    }
    if let Some(v) = positive(p.period_seconds) {
        out.period_seconds = v;
    }
    if let Some(v) = positive(p.timeout_seconds) {
        out.timeout_seconds = v;
    }
    if let Some(v) = positive(p.success_threshold) {
        out.success_threshold = v;
    }
    if let Some(v) = positive(p.failure_threshold) {
        out.failure_threshold = v;
    }
    out.termination_grace_period_seconds = p
        .termination_grace_period_seconds
        .and_then(|g| u64::try_from(g).ok());
    Ok(out)
}

/// Converts a container's `lifecycle` (absent: no hooks).
pub fn lifecycle(l: Option<&k8s::Lifecycle>, c: &Container, path: &str) -> Result<Lifecycle> {
    let Some(l) = l else {
        return Ok(Lifecycle::default());
    };
    let hook = |h: &Option<k8s::LifecycleHandler>, field: &str| -> Result<Option<HookAction>> {
        h.as_ref()
            .map(|h| hook(h, c, &format!("{path}.{field}")))
            .transpose()
    };
    Ok(Lifecycle {
        post_start: hook(&l.post_start, "postStart")?,
        pre_stop: hook(&l.pre_stop, "preStop")?,
    })
}

fn hook(h: &k8s::LifecycleHandler, c: &Container, path: &str) -> Result<HookAction> {
    if let Some(e) = &h.exec {
        Ok(HookAction::Exec {
            command: e.command.clone().unwrap_or_default(),
        })
    } else if let Some(g) = &h.http_get {
        Ok(HookAction::HttpGet(http_get(
            g,
            c,
            &format!("{path}.httpGet"),
        )?))
    } else if let Some(s) = &h.sleep {
        Ok(HookAction::Sleep {
            seconds: u64::try_from(s.seconds)
                .map_err(|_| anyhow!("{path}.sleep: Invalid value: {}", s.seconds))?,
        })
    } else {
        bail!("{path}: Required value: must specify a handler type")
    }
}

fn http_get(g: &k8s::HTTPGetAction, c: &Container, path: &str) -> Result<HttpGet> {
    let raw = g.path.as_deref().unwrap_or_default();
    Ok(HttpGet {
        host: g.host.clone().filter(|h| !h.is_empty()),
        port: port(&g.port, c, &format!("{path}.port"))?,
        // kubelet's URL always has a path; "healthz" is "/healthz".
        path: if raw.starts_with('/') {
            raw.to_string()
        } else {
            format!("/{raw}")
        },
        scheme: match g.scheme.as_deref() {
            Some("HTTPS") => HttpScheme::Https,
            _ => HttpScheme::Http,
        },
        headers: g
            .http_headers
            .iter()
            .flatten()
            .map(|h| (h.name.clone(), h.value.clone()))
            .collect(),
    })
}

/// A port number, or the number of the container's port of that name.
fn port(p: &IntOrString, c: &Container, path: &str) -> Result<u16> {
    let number = match p {
        IntOrString::Int(n) => *n,
        IntOrString::String(name) => c
            .ports
            .iter()
            .flatten()
            .find(|port| port.name.as_deref() == Some(name.as_str()))
            .map(|port| port.container_port)
            .ok_or_else(|| {
                anyhow!(
                    "{path}: Not found: {name:?}: must be the name of one of the container's ports"
                )
            })?,
    };
    u16::try_from(number)
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| {
            anyhow!("{path}: Invalid value: {number}: must be between 1 and 65535, inclusive")
        })
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{
        ContainerPort, ExecAction, GRPCAction, HTTPGetAction, HTTPHeader, LifecycleHandler,
        SleepAction, TCPSocketAction,
    };

    use super::*;

    fn web() -> Container {
        Container {
            name: "web".into(),
            ports: Some(vec![ContainerPort {
                name: Some("http".into()),
                container_port: 8080,
                ..Default::default()
            }]),
            ..Default::default()
        }
    }

    #[test]
    fn defaults_fill_unset_and_zero_timings() {
        let p = k8s::Probe {
            exec: Some(ExecAction {
                command: Some(vec!["true".into()]),
            }),
            period_seconds: Some(0),
            failure_threshold: Some(7),
            initial_delay_seconds: Some(4),
            ..Default::default()
        };
        let got = probe(&p, &web(), "p").unwrap();
        let mut want = Probe::with_defaults(ProbeAction::Exec {
            command: vec!["true".into()],
        });
        want.failure_threshold = 7;
        want.initial_delay_seconds = 4;
        assert_eq!(got, want);
        assert_eq!(got.period_seconds, 10);
    }

    #[test]
    fn named_ports_and_paths_resolve_as_kubelet_does() {
        let p = k8s::Probe {
            http_get: Some(HTTPGetAction {
                port: IntOrString::String("http".into()),
                path: Some("healthz?full=1".into()),
                scheme: Some("HTTPS".into()),
                host: Some(String::new()),
                http_headers: Some(vec![HTTPHeader {
                    name: "X-A".into(),
                    value: "b".into(),
                }]),
            }),
            termination_grace_period_seconds: Some(3),
            ..Default::default()
        };
        let got = probe(&p, &web(), "p").unwrap();
        assert_eq!(
            got.action,
            ProbeAction::HttpGet(HttpGet {
                host: None,
                port: 8080,
                path: "/healthz?full=1".into(),
                scheme: HttpScheme::Https,
                headers: vec![("X-A".into(), "b".into())],
            })
        );
        assert_eq!(got.termination_grace_period_seconds, Some(3));
        let empty_path = k8s::Probe {
            http_get: Some(HTTPGetAction {
                port: IntOrString::Int(80),
                ..Default::default()
            }),
            ..Default::default()
        };
        let ProbeAction::HttpGet(g) = probe(&empty_path, &web(), "p").unwrap().action else {
            panic!("an httpGet probe")
        };
        assert_eq!(
            (g.path.as_str(), g.scheme, g.port),
            ("/", HttpScheme::Http, 80)
        );
    }

    #[test]
    fn tcp_grpc_and_unknown_ports() {
        let tcp = k8s::Probe {
            tcp_socket: Some(TCPSocketAction {
                host: Some("10.0.0.1".into()),
                port: IntOrString::String("http".into()),
            }),
            ..Default::default()
        };
        assert_eq!(
            probe(&tcp, &web(), "p").unwrap().action,
            ProbeAction::TcpSocket {
                host: Some("10.0.0.1".into()),
                port: 8080
            }
        );
        let grpc = k8s::Probe {
            grpc: Some(GRPCAction {
                port: 9000,
                service: Some("db".into()),
            }),
            ..Default::default()
        };
        assert_eq!(
            probe(&grpc, &web(), "p").unwrap().action,
            ProbeAction::Grpc {
                port: 9000,
                service: Some("db".into())
            }
        );
        let unknown = k8s::Probe {
            tcp_socket: Some(TCPSocketAction {
                host: None,
                port: IntOrString::String("admin".into()),
            }),
            ..Default::default()
        };
        let err = probe(&unknown, &web(), "spec.containers[0].livenessProbe").unwrap_err();
        assert!(
            err.to_string().starts_with(
                "spec.containers[0].livenessProbe.tcpSocket.port: Not found: \"admin\""
            ),
            "{err}"
        );
    }

    #[test]
    fn hooks() {
        let l = k8s::Lifecycle {
            post_start: Some(LifecycleHandler {
                exec: Some(ExecAction {
                    command: Some(vec!["touch".into(), "/x".into()]),
                }),
                ..Default::default()
            }),
            pre_stop: Some(LifecycleHandler {
                sleep: Some(SleepAction { seconds: 5 }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let got = lifecycle(Some(&l), &web(), "l").unwrap();
        assert_eq!(
            got.post_start,
            Some(HookAction::Exec {
                command: vec!["touch".into(), "/x".into()]
            })
        );
        assert_eq!(got.pre_stop, Some(HookAction::Sleep { seconds: 5 }));
        assert_eq!(lifecycle(None, &web(), "l").unwrap(), Lifecycle::default());
        let http = LifecycleHandler {
            http_get: Some(HTTPGetAction {
                port: IntOrString::String("http".into()),
                path: Some("/quit".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let Ok(HookAction::HttpGet(g)) = hook(&http, &web(), "h") else {
            panic!("an httpGet hook")
        };
        assert_eq!((g.port, g.path.as_str()), (8080, "/quit"));
    }
}
