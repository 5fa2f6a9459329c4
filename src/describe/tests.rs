//! `describe` of a made-up pod, against kubectl's layout.

use jiff::tz::TimeZone;
use k8s_openapi::api::core::v1::Pod;
use podvm_proto::{Event, EventType};
use serde_json::json;

use super::containers::describe_probe;
use super::*;

fn clock() -> Clock {
    Clock {
        now: "2026-03-01T10:05:00Z".parse().unwrap(),
        zone: TimeZone::UTC,
    }
}

fn made_up_pod() -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": "web", "namespace": "default", "creationTimestamp": "2026-03-01T10:00:00Z",
            "labels": {"app": "web", "tier": "front"},
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}", "note": "hi"}
        },
        "spec": {
            "nodeName": "host1",
            "readinessGates": [{"conditionType": "example.com/lb"}],
            "initContainers": [{"name": "setup", "image": "busybox", "command": ["sh", "-c", "echo hi"]}],
            "containers": [{
                "name": "app", "image": "nginx:1.27",
                "ports": [{"containerPort": 80}],
                "env": [{"name": "MODE", "value": "prod"},
                        {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080}},
                "readinessProbe": {"exec": {"command": ["cat", "/tmp/healthy"]}, "periodSeconds": 5},
                "volumeMounts": [{"name": "cache", "mountPath": "/cache"}]
            }],
            "volumes": [{"name": "cache", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}}]
        },
        "status": {
            "phase": "Running",
            "startTime": "2026-03-01T10:00:01Z",
            "qosClass": "BestEffort",
            "conditions": [
                {"type": "PodReadyToStartContainers", "status": "True"},
                {"type": "Initialized", "status": "True"},
                {"type": "Ready", "status": "False"},
                {"type": "ContainersReady", "status": "True"},
                {"type": "PodScheduled", "status": "True"}
            ],
            "initContainerStatuses": [{
                "name": "setup", "image": "busybox", "imageID": "sha256:b", "containerID": "podvm://s1",
                "ready": true, "restartCount": 0,
                "state": {"terminated": {"exitCode": 0, "reason": "Completed",
                    "startedAt": "2026-03-01T10:00:02Z", "finishedAt": "2026-03-01T10:00:03Z"}}
            }],
            "containerStatuses": [{
                "name": "app", "image": "nginx:1.27", "imageID": "sha256:n", "containerID": "podvm://a1",
                "ready": true, "restartCount": 1, "started": true,
                "state": {"running": {"startedAt": "2026-03-01T10:01:00Z"}},
                "lastState": {"terminated": {"exitCode": 137, "signal": 9, "reason": "Error",
                    "startedAt": "2026-03-01T10:00:04Z", "finishedAt": "2026-03-01T10:00:59Z"}}
            }]
        }
    }))
    .unwrap()
}

fn event(reason: &str, message: &str, first: &str, last: &str, count: u32) -> Event {
    Event {
        seq: 1,
        event_type: if reason == "Unhealthy" {
            EventType::Warning
        } else {
            EventType::Normal
        },
        reason: reason.into(),
        message: message.into(),
        container: Some("app".into()),
        first_timestamp: first.into(),
        last_timestamp: last.into(),
        count,
    }
}

#[test]
fn a_pod_is_described_the_way_kubectl_describes_it() {
    let events = vec![
        event(
            "Unhealthy",
            "Liveness probe failed: HTTP probe failed with statuscode: 500",
            "2026-03-01T10:00:30Z",
            "2026-03-01T10:00:50Z",
            3,
        ),
        event(
            "Started",
            "Started container app",
            "2026-03-01T10:00:04Z",
            "2026-03-01T10:00:04Z",
            1,
        ),
    ];
    let text = describe_pod(&made_up_pod(), &events, &clock());
    // Consecutive lines with a tab share a column block (Go's tabwriter):
    // QoS Class lines up with the volume's fields, as in kubectl.
    let expected = "\
Name:         web
Namespace:    default
Priority:     0
Node:         host1
Start Time:   Sun, 01 Mar 2026 10:00:01 +0000
Labels:       app=web
              tier=front
Annotations:  note: hi
Status:       Running
IP:           
IPs:          <none>
Init Containers:
  setup:
    Container ID:  podvm://s1
    Image:         busybox
    Image ID:      sha256:b
    Port:          <none>
    Host Port:     <none>
    Command:
      sh
      -c
      echo hi
    State:          Terminated
      Reason:       Completed
      Exit Code:    0
      Started:      Sun, 01 Mar 2026 10:00:02 +0000
      Finished:     Sun, 01 Mar 2026 10:00:03 +0000
    Ready:          True
    Restart Count:  0
    Environment:    <none>
    Mounts:         <none>
Containers:
  app:
    Container ID:   podvm://a1
    Image:          nginx:1.27
    Image ID:       sha256:n
    Port:           80/TCP
    Host Port:      0/TCP
    State:          Running
      Started:      Sun, 01 Mar 2026 10:01:00 +0000
    Last State:     Terminated
      Reason:       Error
      Exit Code:    137
      Signal:       9
      Started:      Sun, 01 Mar 2026 10:00:04 +0000
      Finished:     Sun, 01 Mar 2026 10:00:59 +0000
    Ready:          True
    Restart Count:  1
    Liveness:       http-get http://:8080/healthz delay=0s timeout=1s period=10s #success=1 #failure=3
    Readiness:      exec [cat /tmp/healthy] delay=0s timeout=1s period=5s #success=1 #failure=3
    Environment:
      MODE:  prod
      POD:   web (v1:metadata.name)
    Mounts:
      /cache from cache (rw)
Readiness Gates:
  Type             Status
  example.com/lb   <none> 
Conditions:
  Type                        Status
  PodReadyToStartContainers   True 
  Initialized                 True 
  Ready                       False 
  ContainersReady             True 
  PodScheduled                True 
Volumes:
  cache:
    Type:        EmptyDir (a temporary directory that shares a pod's lifetime)
    Medium:      Memory
    SizeLimit:   64Mi
QoS Class:       BestEffort
Node-Selectors:  <none>
Tolerations:     <none>
Events:
  Type     Reason     Age                    From     Message
  ----     ------     ----                   ----     -------
  Normal   Started    4m56s                  kubelet  Started container app
  Warning  Unhealthy  4m10s (x3 over 4m30s)  kubelet  Liveness probe failed: HTTP probe failed with statuscode: 500
";
    assert_eq!(text, expected, "\n{text}");
}

#[test]
fn probes_read_in_kubectls_one_line_form() {
    let probe = |v: serde_json::Value| -> k8s_openapi::api::core::v1::Probe {
        serde_json::from_value(v).unwrap()
    };
    assert_eq!(
        describe_probe(&probe(
            json!({"tcpSocket": {"port": 80}, "initialDelaySeconds": 5})
        )),
        "tcp-socket :80 delay=5s timeout=1s period=10s #success=1 #failure=3"
    );
    assert_eq!(
        describe_probe(&probe(
            json!({"grpc": {"port": 9090, "service": "health"}, "failureThreshold": 1})
        )),
        "grpc <pod>:9090 health delay=0s timeout=1s period=10s #success=1 #failure=1"
    );
    assert_eq!(
        describe_probe(&probe(
            json!({"httpGet": {"port": "web", "scheme": "HTTPS", "host": "::1"}})
        )),
        "http-get https://[::1]:web/ delay=0s timeout=1s period=10s #success=1 #failure=3"
    );
}

#[test]
fn tolerations_and_long_annotations_follow_kubectl() {
    let mut w = Writer::default();
    let list: Vec<k8s_openapi::api::core::v1::Toleration> = serde_json::from_value(json!([
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
        {"operator": "Exists"},
        {"key": "gpu", "value": "yes", "effect": "NoSchedule"}
    ]))
    .unwrap();
    tolerations(&mut w, &list);
    assert_eq!(
        tabwriter::align(&w.out),
        "Tolerations:  op=Exists\n              gpu=yes:NoSchedule\n              node.kubernetes.io/unreachable:NoExecute op=Exists for 300s\n"
    );
    let mut w = Writer::default();
    let long: BTreeMap<String, String> = [("k".to_string(), "v".repeat(150))].into();
    annotations(&mut w, Some(&long));
    let text = tabwriter::align(&w.out);
    assert!(text.starts_with("Annotations:  k:\n"), "{text}");
    assert!(
        text.trim_end()
            .ends_with(&format!("{}...", "v".repeat(138))),
        "{text}"
    );
}
