//! `httpGet` over HTTPS: no certificate verification, as kubelet; HTTPS
//! hooks answered in plain HTTP fall back to HTTP.
#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use std::time::Duration;

use podvm_probe::Outcome;
use podvm_proto::lifecycle::{HttpGet, HttpScheme, ProbeAction};
use support::{no_exec, prober, response, HttpServer};

const TIMEOUT: Duration = Duration::from_secs(5);

fn get(port: u16, host: Option<&str>) -> HttpGet {
    HttpGet {
        host: host.map(str::to_owned),
        port,
        path: "/healthz".to_owned(),
        scheme: HttpScheme::Https,
        headers: Vec::new(),
    }
}

#[test]
fn self_signed_certificate_is_accepted() {
    let server = HttpServer::tls(|_| Some(response("200 OK", "", "")));
    let outcome = prober().probe_once(
        &ProbeAction::HttpGet(get(server.port, None)),
        TIMEOUT,
        no_exec(),
    );
    assert_eq!(outcome, Outcome::Success);
    assert_eq!(server.paths(), ["/healthz"]);
}

#[test]
fn status_counts_over_tls_too() {
    let server = HttpServer::tls(|_| Some(response("404 Not Found", "", "")));
    let outcome = prober().probe_once(
        &ProbeAction::HttpGet(get(server.port, None)),
        TIMEOUT,
        no_exec(),
    );
    assert_eq!(
        outcome,
        Outcome::Failure("HTTP probe failed with statuscode: 404".to_owned())
    );
}

#[test]
fn probe_against_plain_http_server_fails_like_go() {
    let server = HttpServer::plain(|_| Some(response("400 Bad Request", "", "")));
    let outcome = prober().probe_once(
        &ProbeAction::HttpGet(get(server.port, None)),
        TIMEOUT,
        no_exec(),
    );
    let expected = format!(
        "Get \"https://127.0.0.1:{}/healthz\": http: server gave HTTP response to HTTPS client",
        server.port
    );
    assert_eq!(outcome, Outcome::Failure(expected));
}

#[test]
fn hook_falls_back_to_http() {
    let server = HttpServer::plain(|_| Some(response("400 Bad Request", "", "")));
    let outcome = prober().hook_http_get(&get(server.port, None), TIMEOUT);
    let expected = format!(
        "request to HTTPS lifecycle hook 127.0.0.1:{} got HTTP response, retry with HTTP succeeded",
        server.port
    );
    assert_eq!(outcome, Outcome::Warning(expected));
    assert_eq!(server.paths(), ["/healthz"]);
}
