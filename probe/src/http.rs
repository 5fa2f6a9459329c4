//! The `httpGet` probe (kubelet's `pkg/probe/http`) and the `httpGet`
//! lifecycle hook (kubelet's `lifecycle.handlerRunner.runHTTPHandler`).
//!
//! Probe: 200–299 is success, 300–399 (a redirect that was not followed)
//! success with a warning, anything else `HTTP probe failed with
//! statuscode: N`. Hook: any answer is success; only a failed exchange
//! fails it, and an HTTPS hook answered in plain HTTP is retried over HTTP.

use std::time::Duration;

use hyper::header::{HeaderName, HeaderValue, AUTHORIZATION};
use podvm_proto::lifecycle::{HttpGet, HttpScheme};
use tokio::time::Instant;
use url::Url;

use crate::dial::DEFAULT_HOST;
use crate::http_client::{self, Request};
use crate::http_tls::HTTP_RESPONSE_TO_HTTPS;
use crate::{go_text, Outcome, USER_AGENT_LIFECYCLE, USER_AGENT_PROBE};

/// Kubelet reads at most this much of a probe's response body.
const MAX_BODY: usize = 10 * 1024;

/// Runs an `httpGet` probe.
pub(crate) async fn probe(get: &HttpGet, timeout: Duration) -> Outcome {
    let deadline = Instant::now() + timeout;
    let request = match request(get, get.scheme, USER_AGENT_PROBE) {
        Ok(request) => request,
        Err(text) => return Outcome::Failure(text),
    };
    let reply = match http_client::get(request, deadline).await {
        Ok(reply) => reply,
        Err(text) => return Outcome::Failure(text),
    };
    let status = reply.status.as_u16();
    match reply.read_body(MAX_BODY, deadline).await {
        Err(text) => Outcome::Errored(text),
        Ok(body) => verdict(status, &body),
    }
}

/// Kubelet's `DoHTTPProbe` verdict on a status and body.
fn verdict(status: u16, body: &[u8]) -> Outcome {
    match status {
        200..=299 => Outcome::Success,
        300..=399 => Outcome::Warning(format!(
            "Probe terminated redirects, Response body: {}",
            String::from_utf8_lossy(body)
        )),
        // The body stays out of the message, as kubelet's (issue 99425).
        _ => Outcome::Failure(format!("HTTP probe failed with statuscode: {status}")),
    }
}

/// Runs an `httpGet` lifecycle hook. `Warning` means HTTPS fell back to
/// HTTP; its text is kubelet's `LifecycleHTTPFallback` event message.
pub(crate) async fn hook(get: &HttpGet, timeout: Duration) -> Outcome {
    let deadline = Instant::now() + timeout;
    let first = match request(get, get.scheme, USER_AGENT_LIFECYCLE) {
        Ok(request) => request,
        Err(text) => return Outcome::Failure(text),
    };
    let authority = first.url[url::Position::BeforeHost..url::Position::AfterPort].to_owned();
    let error = match http_client::get(first, deadline).await {
        Ok(_) => return Outcome::Success,
        Err(text) => text,
    };
    if get.scheme != HttpScheme::Https || !error.contains(HTTP_RESPONSE_TO_HTTPS) {
        return Outcome::Failure(error);
    }
    let retry = match request(get, HttpScheme::Http, USER_AGENT_LIFECYCLE) {
        Ok(mut retry) => {
            retry.headers.retain(|(name, _)| *name != AUTHORIZATION);
            retry
        }
        Err(_) => return Outcome::Failure(error),
    };
    match http_client::get(retry, deadline).await {
        Ok(_) => Outcome::Warning(format!(
            "request to HTTPS lifecycle hook {authority} got HTTP response, retry with HTTP succeeded"
        )),
        Err(_) => Outcome::Failure(error),
    }
}

/// Kubelet's `NewRequestForHTTPGetAction`: the URL, `User-Agent` and
/// `Accept: */*` unless the manifest sets them (an empty `Accept` removes
/// it, an empty `User-Agent` sends none), and a `Host` header as the host.
fn request(get: &HttpGet, scheme: HttpScheme, user_agent: &str) -> Result<Request, String> {
    let host = get
        .host
        .as_deref()
        .filter(|host| !host.is_empty())
        .unwrap_or(DEFAULT_HOST);
    let scheme = match scheme {
        HttpScheme::Http => "http",
        HttpScheme::Https => "https",
    };
    let display = format!(
        "{scheme}://{}{}",
        go_text::join_host_port(host, get.port),
        get.path
    );
    let url = Url::parse(&display).map_err(|err| format!("parse {display:?}: {err}"))?;
    let first = |wanted: &str| {
        get.headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(wanted))
            .map(|(_, value)| value.as_str())
    };
    let mut headers = Vec::new();
    match first("user-agent") {
        None => headers.push(header("User-Agent", user_agent)?),
        Some("") => {}
        Some(value) => headers.push(header("User-Agent", value)?),
    }
    let accept = first("accept");
    if accept.is_none() {
        headers.push(header("Accept", "*/*")?);
    }
    for (name, value) in &get.headers {
        let skip = name.eq_ignore_ascii_case("host")
            || name.eq_ignore_ascii_case("user-agent")
            || (name.eq_ignore_ascii_case("accept") && accept == Some(""));
        if !skip {
            headers.push(header(name, value)?);
        }
    }
    let host_header = first("host")
        .filter(|value| !value.is_empty())
        .map(str::to_owned);
    Ok(Request {
        url,
        display,
        headers,
        host: host_header,
    })
}

/// A header pair; invalid names and values fail as in Go.
fn header(name: &str, value: &str) -> Result<(HeaderName, HeaderValue), String> {
    let name = HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| format!("net/http: invalid header field name {name:?}"))?;
    let value = HeaderValue::from_str(value).map_err(|_| {
        format!(
            "net/http: invalid header field value for {:?}",
            name.as_str()
        )
    })?;
    Ok((name, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(headers: &[(&str, &str)]) -> HttpGet {
        HttpGet {
            host: None,
            port: 8080,
            path: "/healthz?verbose=1".to_owned(),
            scheme: HttpScheme::Http,
            headers: headers
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                .collect(),
        }
    }

    fn names(request: &Request) -> Vec<(String, String)> {
        request
            .headers
            .iter()
            .map(|(name, value)| (name.as_str().to_owned(), value.to_str().unwrap().to_owned()))
            .collect()
    }

    #[test]
    fn defaults_are_kubelet_s() {
        let request = request(&get(&[]), HttpScheme::Http, USER_AGENT_PROBE).unwrap();
        assert_eq!(request.display, "http://127.0.0.1:8080/healthz?verbose=1");
        assert_eq!(request.host, None);
        assert_eq!(
            names(&request),
            [
                ("user-agent".to_owned(), "kube-probe/1.33".to_owned()),
                ("accept".to_owned(), "*/*".to_owned())
            ]
        );
    }

    #[test]
    fn manifest_headers_override_defaults() {
        let headers = [
            ("user-agent", "mine"),
            ("Accept", ""),
            ("Host", "example.com"),
            ("X-A", "1"),
        ];
        let request = request(&get(&headers), HttpScheme::Https, USER_AGENT_PROBE).unwrap();
        assert_eq!(request.display, "https://127.0.0.1:8080/healthz?verbose=1");
        assert_eq!(request.host.as_deref(), Some("example.com"));
        assert_eq!(
            names(&request),
            [
                ("user-agent".to_owned(), "mine".to_owned()),
                ("x-a".to_owned(), "1".to_owned())
            ]
        );
        let silent = request_with(&[("User-Agent", "")]);
        assert!(names(&silent).iter().all(|(name, _)| name != "user-agent"));
    }

    fn request_with(headers: &[(&str, &str)]) -> Request {
        request(&get(headers), HttpScheme::Http, USER_AGENT_LIFECYCLE).unwrap()
    }

    #[test]
    fn verdicts_follow_status_codes() {
        assert_eq!(verdict(200, b"ok"), Outcome::Success);
        assert_eq!(
            verdict(399, b""),
            Outcome::Warning("Probe terminated redirects, Response body: ".to_owned())
        );
        assert_eq!(
            verdict(503, b"down"),
            Outcome::Failure("HTTP probe failed with statuscode: 503".to_owned())
        );
        assert_eq!(
            verdict(199, b""),
            Outcome::Failure("HTTP probe failed with statuscode: 199".to_owned())
        );
    }
}
