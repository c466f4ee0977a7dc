//! Plain HTTP to a mirror or registry from the test itself: a reqwest client that never uses a
//! proxy, a small runtime to drive it, and the response with its body read (or the error that
//! cut it short).

pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    /// `Err` when the body could not be read to its end (e.g. the server cut it short).
    pub body: Result<Vec<u8>, String>,
}

impl Resp {
    /// The `Cache-Status` header (empty when none).
    pub fn cache_status(&self) -> &str {
        self.headers
            .get("cache-status")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The body, which must have been read without error.
    pub fn body(&self) -> &[u8] {
        self.body.as_ref().expect("body read without error")
    }
}

/// A multi-threaded runtime with 2 workers.
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A client that ignores the proxy guard (everything here is on loopback).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// `method url` with `headers`, body read to the end.
pub async fn fetch(c: &reqwest::Client, method: &str, url: &str, headers: &[(&str, &str)]) -> Resp {
    try_fetch(c, method, url, headers)
        .await
        .expect("request sent")
}

/// [`fetch`], for a response that may be aborted before its headers are complete (`Err`).
pub async fn try_fetch(
    c: &reqwest::Client,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
) -> Result<Resp, reqwest::Error> {
    let mut r = c.request(method.parse().unwrap(), url);
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    let resp = r.send().await?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp
        .bytes()
        .await
        .map(|b| b.to_vec())
        .map_err(|e| format!("{e:?}"));
    Ok(Resp {
        status,
        headers,
        body,
    })
}

/// `GET url` with `headers`.
pub fn get(url: &str, headers: &[(&str, &str)]) -> Resp {
    rt().block_on(fetch(&client(), "GET", url, headers))
}

/// `HEAD url`.
pub fn head(url: &str) -> Resp {
    rt().block_on(fetch(&client(), "HEAD", url, &[]))
}

/// A server's Prometheus `/metrics` text (`base`: its URL).
pub fn metrics(base: &str) -> String {
    String::from_utf8(get(&format!("{base}/metrics"), &[]).body().to_vec()).unwrap()
}

/// The value of one metric line (`name{labels}` exactly) in a `/metrics` text, 0 when absent.
pub fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0)
}
