//! One `GET` the way kubelet's Go HTTP client sends it: a fresh connection
//! per request (`Connection: close`), one deadline for the whole exchange
//! (`Client.Timeout`), and kubelet's redirect policy: redirects to the same
//! host are followed (at most 10 requests in all), a redirect to another
//! host is not followed and is itself the answer. Errors are Go's texts
//! (`Get "URL": ...`).

use http_body_util::{BodyExt, Empty};
use hyper::body::{Bytes, Incoming};
use hyper::client::conn::http1;
use hyper::header::{HeaderName, HeaderValue, CONNECTION, HOST, LOCATION};
use hyper::{Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{timeout_at, Instant};
use url::{Host, Position, Url};

use crate::dial::{dial, DialError};
use crate::http_tls;

/// Go's default `CheckRedirect` limit, kept by kubelet's checker.
const MAX_REQUESTS: usize = 10;
/// Go's suffix for a request that ran out of time before its answer.
const AWAITING_HEADERS: &str = "(Client.Timeout exceeded while awaiting headers)";

/// A request ready to send.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub(crate) url: Url,
    /// The URL as kubelet prints it in errors.
    pub(crate) display: String,
    /// Headers besides `Host`, in order.
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
    /// A `Host` header from the manifest, replacing the URL's authority.
    pub(crate) host: Option<String>,
}

/// The final answer: its status and a body still to read.
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    body: Incoming,
}

impl Reply {
    /// Reads at most `limit` bytes of the body before `deadline` (Go's
    /// `ReadAtMost`: a longer body is cut, not an error).
    pub(crate) async fn read_body(
        mut self,
        limit: usize,
        deadline: Instant,
    ) -> Result<Vec<u8>, String> {
        let mut data = Vec::new();
        while data.len() < limit {
            match timeout_at(deadline, self.body.frame()).await {
                Err(_) => {
                    return Err(
                        "context deadline exceeded (Client.Timeout or context cancellation while reading body)"
                            .to_owned(),
                    )
                }
                Ok(None) => break,
                Ok(Some(Err(err))) => return Err(hyper_error_text(&err)),
                Ok(Some(Ok(frame))) => {
                    if let Ok(chunk) = frame.into_data() {
                        data.extend_from_slice(&chunk);
                    }
                }
            }
        }
        data.truncate(limit);
        Ok(data)
    }
}

/// Sends `request`, following redirects by kubelet's rules.
pub(crate) async fn get(mut request: Request, deadline: Instant) -> Result<Reply, String> {
    let first_host = request.url.host_str().map(str::to_owned);
    let mut made = 0;
    loop {
        let response = hop(&request, deadline).await?;
        made += 1;
        let status = response.status();
        let location = match status.as_u16() {
            301 | 302 | 303 | 307 | 308 => response.headers().get(LOCATION).cloned(),
            _ => None,
        };
        let location = location
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
            .filter(|text| !text.is_empty());
        let Some(location) = location else {
            return Ok(Reply {
                status,
                body: response.into_body(),
            });
        };
        let next = request.url.join(&location).map_err(|err| {
            format!(
                "Get {:?}: failed to parse Location header {location:?}: {err}",
                request.display
            )
        })?;
        if next.host_str() != first_host.as_deref() {
            // kubelet's checker: http.ErrUseLastResponse.
            return Ok(Reply {
                status,
                body: response.into_body(),
            });
        }
        if made >= MAX_REQUESTS {
            return Err(format!("Get {location:?}: stopped after 10 redirects"));
        }
        // A custom Host survives only a relative redirect (Go's rule).
        if Url::parse(&location).is_ok() {
            request.host = None;
        }
        request.display = next.to_string();
        request.url = next;
    }
}

/// One request on a connection of its own.
async fn hop(request: &Request, deadline: Instant) -> Result<Response<Incoming>, String> {
    let fail = |text: &str| format!("Get {:?}: {text}", request.display);
    let url = &request.url;
    let https = match url.scheme() {
        "http" => false,
        "https" => true,
        other => return Err(fail(&format!("unsupported protocol scheme {other:?}"))),
    };
    let host = match url.host() {
        Some(Host::Ipv6(ip)) => ip.to_string(),
        Some(host) => host.to_string(),
        None => return Err(fail("http: no Host in request URL")),
    };
    let port = url
        .port_or_known_default()
        .unwrap_or(if https { 443 } else { 80 });
    let message = build(request)?;
    let stream = dial(&host, port, deadline).await.map_err(|err| match err {
        DialError::TimedOut(text) => fail(&format!("{text} {AWAITING_HEADERS}")),
        DialError::Failed(text) => fail(&text),
    })?;
    let exchange = async {
        if https {
            let tls = http_tls::handshake(stream, &host).await?;
            send(tls, message, deadline).await
        } else {
            send(stream, message, deadline).await
        }
    };
    match timeout_at(deadline, exchange).await {
        Err(_) => Err(fail(&format!(
            "context deadline exceeded {AWAITING_HEADERS}"
        ))),
        Ok(Err(text)) => Err(fail(&text)),
        Ok(Ok(response)) => Ok(response),
    }
}

/// The request message: origin-form target, `Host`, the headers, `Connection: close`.
fn build(request: &Request) -> Result<hyper::Request<Empty<Bytes>>, String> {
    let url = &request.url;
    let target = &url[Position::BeforePath..Position::AfterQuery];
    let host = match &request.host {
        Some(host) => host.clone(),
        None => url[Position::BeforeHost..Position::AfterPort].to_owned(),
    };
    let host = HeaderValue::from_str(&host)
        .map_err(|_| format!("Get {:?}: net/http: invalid Host header", request.display))?;
    let mut message = hyper::Request::get(target)
        .body(Empty::new())
        .map_err(|err| format!("Get {:?}: {err}", request.display))?;
    let headers = message.headers_mut();
    headers.insert(HOST, host);
    for (name, value) in &request.headers {
        headers.append(name.clone(), value.clone());
    }
    headers.insert(CONNECTION, HeaderValue::from_static("close"));
    Ok(message)
}

/// HTTP/1.1 over `io`; the connection is driven by a task of its own that
/// ends at the deadline at the latest.
async fn send<IO>(
    io: IO,
    message: hyper::Request<Empty<Bytes>>,
    deadline: Instant,
) -> Result<Response<Incoming>, String>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = http1::Builder::new()
        .title_case_headers(true)
        .handshake(TokioIo::new(io))
        .await
        .map_err(|err| hyper_error_text(&err))?;
    tokio::spawn(async move {
        // Its error, if any, is the request's error too.
        let _ = timeout_at(deadline, connection).await;
    });
    sender
        .send_request(message)
        .await
        .map_err(|err| hyper_error_text(&err))
}

/// Go's text for a broken exchange (`EOF` when the server hung up).
fn hyper_error_text(err: &hyper::Error) -> String {
    if err.is_incomplete_message() {
        "EOF".to_owned()
    } else {
        err.to_string()
    }
}
