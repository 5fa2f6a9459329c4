//! `httpGet` probes and hooks against a test server on 127.0.0.1.
#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use std::time::Duration;

use podvm_probe::Outcome;
use podvm_proto::lifecycle::{HttpGet, HttpScheme, ProbeAction};
use support::{closed_port, no_exec, prober, response, HttpServer};

const TIMEOUT: Duration = Duration::from_secs(5);

fn get(port: u16, path: &str) -> HttpGet {
    HttpGet {
        host: None,
        port,
        path: path.to_owned(),
        scheme: HttpScheme::Http,
        headers: Vec::new(),
    }
}

fn probe(get: HttpGet, timeout: Duration) -> Outcome {
    prober().probe_once(&ProbeAction::HttpGet(get), timeout, no_exec())
}

#[test]
fn ok_is_success() {
    let server = HttpServer::plain(|_| Some(response("200 OK", "", "fine")));
    assert_eq!(
        probe(get(server.port, "/healthz"), TIMEOUT),
        Outcome::Success
    );
    assert_eq!(server.paths(), ["/healthz"]);
}

#[test]
fn service_unavailable_fails_with_status() {
    let server = HttpServer::plain(|_| Some(response("503 Service Unavailable", "", "down")));
    assert_eq!(
        probe(get(server.port, "/healthz"), TIMEOUT),
        Outcome::Failure("HTTP probe failed with statuscode: 503".to_owned())
    );
}

#[test]
fn redirect_to_same_host_is_followed() {
    let server = HttpServer::plain(|path| match path {
        "/a" => Some(response("302 Found", "Location: /b?x=1\r\n", "")),
        _ => Some(response("200 OK", "", "")),
    });
    assert_eq!(probe(get(server.port, "/a"), TIMEOUT), Outcome::Success);
    assert_eq!(server.paths(), ["/a", "/b?x=1"]);
}

#[test]
fn endless_redirects_stop_after_ten_requests() {
    let server =
        HttpServer::plain(|_| Some(response("301 Moved Permanently", "Location: /loop\r\n", "")));
    assert_eq!(
        probe(get(server.port, "/loop"), TIMEOUT),
        Outcome::Failure("Get \"/loop\": stopped after 10 redirects".to_owned())
    );
    assert_eq!(server.paths().len(), 10);
}

#[test]
fn redirect_to_other_host_is_a_warning() {
    let server = HttpServer::plain(|_| {
        Some(response(
            "302 Found",
            "Location: http://localhost:1/elsewhere\r\n",
            "moved",
        ))
    });
    assert_eq!(
        probe(get(server.port, "/a"), TIMEOUT),
        Outcome::Warning("Probe terminated redirects, Response body: moved".to_owned())
    );
    assert_eq!(server.paths(), ["/a"]);
}

#[test]
fn kubelet_headers_and_manifest_headers_are_sent() {
    let server = HttpServer::plain(|_| Some(response("200 OK", "", "")));
    let mut with_headers = get(server.port, "/h");
    with_headers.headers = vec![
        ("x-custom".to_owned(), "yes".to_owned()),
        ("Host".to_owned(), "example.com".to_owned()),
    ];
    assert_eq!(probe(with_headers, TIMEOUT), Outcome::Success);
    let head = server.heads.lock().unwrap()[0].clone();
    for line in [
        "GET /h HTTP/1.1\r\n",
        "\r\nHost: example.com\r\n",
        "\r\nUser-Agent: kube-probe/1.33\r\n",
        "\r\nAccept: */*\r\n",
        "\r\nX-Custom: yes\r\n",
        "\r\nConnection: close\r\n",
    ] {
        assert!(head.contains(line), "{line:?} missing from {head:?}");
    }
}

#[test]
fn default_host_header_is_the_address() {
    let server = HttpServer::plain(|_| Some(response("200 OK", "", "")));
    assert_eq!(probe(get(server.port, "/"), TIMEOUT), Outcome::Success);
    let head = server.heads.lock().unwrap()[0].clone();
    assert!(
        head.contains(&format!("\r\nHost: 127.0.0.1:{}\r\n", server.port)),
        "{head:?}"
    );
}

#[test]
fn silent_server_times_out() {
    let server = HttpServer::plain(|_| None);
    let expected = format!(
        "Get \"http://127.0.0.1:{}/slow\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)",
        server.port
    );
    assert_eq!(
        probe(get(server.port, "/slow"), Duration::from_millis(300)),
        Outcome::Failure(expected)
    );
}

#[test]
fn refused_connection_reads_like_go() {
    let port = closed_port();
    let expected = format!(
        "Get \"http://127.0.0.1:{port}/healthz\": dial tcp 127.0.0.1:{port}: connect: connection refused"
    );
    assert_eq!(
        probe(get(port, "/healthz"), TIMEOUT),
        Outcome::Failure(expected)
    );
}

#[test]
fn hook_succeeds_on_any_answer_with_lifecycle_agent() {
    let server = HttpServer::plain(|_| Some(response("500 Internal Server Error", "", "")));
    assert_eq!(
        prober().hook_http_get(&get(server.port, "/stop"), TIMEOUT),
        Outcome::Success
    );
    let head = server.heads.lock().unwrap()[0].clone();
    assert!(
        head.contains("\r\nUser-Agent: kube-lifecycle/1.33\r\n"),
        "{head:?}"
    );
}

#[test]
fn hook_fails_when_nobody_answers() {
    let port = closed_port();
    let expected = format!(
        "Get \"http://127.0.0.1:{port}/stop\": dial tcp 127.0.0.1:{port}: connect: connection refused"
    );
    assert_eq!(
        prober().hook_http_get(&get(port, "/stop"), TIMEOUT),
        Outcome::Failure(expected)
    );
}
