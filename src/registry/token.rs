//! Bearer token auth (the distribution token spec): answer a `WWW-Authenticate: Bearer
//! realm=…,service=…,scope=…` challenge by asking the realm for a token, anonymously or with
//! Basic credentials. Shared by `verify`'s registry client and `serve`'s upstream side.
//!
//! Nothing here puts a credential or a token into an error message.

use super::{classify_error, read_small, status_diagnosis, Diagnosis, Exchange, Kind};
use crate::oci::AuthChallenge;
use base64::Engine;
use reqwest::header::AUTHORIZATION;
use reqwest::StatusCode;
use std::time::Duration;

/// The longest a fetched token is used, whatever its `expires_in` says.
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// A token from the realm, ready to send.
#[derive(Clone)]
pub struct Token {
    /// `Bearer <token>`.
    pub authorization: String,
    /// How long the realm says the token stays valid (`expires_in`, default 60 s per the spec).
    pub expires_in: Duration,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("authorization", &"Bearer <redacted>")
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

/// `Basic base64(user:password)`.
pub fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// The scope to ask for: the challenge's own, else `repository:<repo>:pull`; none for `/v2/`.
pub fn scope_for(challenge: &AuthChallenge, repo: &str) -> Option<String> {
    challenge
        .scope()
        .map(str::to_string)
        .or_else(|| (!repo.is_empty()).then(|| format!("repository:{repo}:pull")))
}

/// The challenge's realm, or why there is none.
fn realm_of<'a>(challenge: &'a AuthChallenge, url: &str) -> Result<&'a str, Diagnosis> {
    challenge.realm().ok_or_else(|| {
        Diagnosis::new(
            Kind::BadResponse,
            format!("{url} sent a Bearer challenge without a realm: the registry is misconfigured"),
        )
    })
}

/// Ask the challenge's realm for a token for `repo` (pull). `basic`: an `Authorization: Basic`
/// value to send to the realm, if credentials are configured. `url`: the request that was
/// challenged, for messages.
pub async fn fetch(
    http: &reqwest::Client,
    challenge: &AuthChallenge,
    repo: &str,
    basic: Option<&str>,
    url: &str,
) -> Result<Token, Diagnosis> {
    let realm = realm_of(challenge, url)?;
    let mut token_url = reqwest::Url::parse(realm).map_err(|_| {
        Diagnosis::new(
            Kind::BadResponse,
            format!("{url} sent a Bearer challenge with an invalid realm `{realm}`"),
        )
    })?;
    {
        let mut q = token_url.query_pairs_mut();
        if let Some(service) = challenge.service() {
            q.append_pair("service", service);
        }
        if let Some(scope) = scope_for(challenge, repo) {
            q.append_pair("scope", &scope);
        }
    }
    let mut req = http.get(token_url.clone());
    if let Some(b) = basic {
        req = req.header(AUTHORIZATION, b);
    }
    let token_str = token_url.to_string();
    let resp = req
        .send()
        .await
        .map_err(|e| classify_error(&e, &token_str))?;
    let status = resp.status();
    let exchange = Exchange::from_response("GET", &resp);
    let body = read_small(resp, &token_str).await?;
    if !status.is_success() {
        let mut d = status_diagnosis(status, &token_str, &body, &exchange.headers);
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            d = Diagnosis::new(
                Kind::Unauthorized,
                if basic.is_some() {
                    format!("the token server {realm} refused the credentials given: check the user name and password")
                } else {
                    format!(
                        "the token server {realm} refuses anonymous pulls of `{repo}`: credentials are needed for {}",
                        super::host_of(url)
                    )
                },
            );
        }
        return Err(d);
    }
    parse_response(&body, realm)
}

/// Exchange an identity token (an OAuth2 refresh token, what `docker login` stores under the
/// user name `<token>`) for an access token: `POST <realm>` with `grant_type=refresh_token`.
pub async fn fetch_with_identity_token(
    http: &reqwest::Client,
    challenge: &AuthChallenge,
    repo: &str,
    identity_token: &str,
    url: &str,
) -> Result<Token, Diagnosis> {
    let realm = realm_of(challenge, url)?;
    let mut form: Vec<(&str, String)> = vec![
        ("grant_type", "refresh_token".into()),
        ("client_id", "mirrorctl".into()),
        ("refresh_token", identity_token.into()),
    ];
    if let Some(service) = challenge.service() {
        form.push(("service", service.into()));
    }
    if let Some(scope) = scope_for(challenge, repo) {
        form.push(("scope", scope));
    }
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form.iter().map(|(k, v)| (*k, v.as_str())))
        .finish();
    let resp = http
        .post(realm)
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(body)
        .send()
        .await
        .map_err(|e| classify_error(&e, realm))?;
    let status = resp.status();
    let exchange = Exchange::from_response("POST", &resp);
    let answer = read_small(resp, realm).await?;
    if !status.is_success() {
        let mut d = status_diagnosis(status, realm, &answer, &exchange.headers);
        if status == StatusCode::UNAUTHORIZED
            || status == StatusCode::FORBIDDEN
            || status == StatusCode::BAD_REQUEST
        {
            d = Diagnosis::new(
                Kind::Unauthorized,
                format!("the token server {realm} refused the identity token from the docker config ({status}): log in again with `docker login {}`", super::host_of(url)),
            );
        }
        return Err(d);
    }
    parse_response(&answer, realm)
}

/// The realm's JSON answer: `token` (or OAuth2's `access_token`) and `expires_in`.
pub fn parse_response(body: &[u8], realm: &str) -> Result<Token, Diagnosis> {
    let v: serde_json::Value = serde_json::from_slice(body).map_err(|_| {
        Diagnosis::new(
            Kind::BadResponse,
            format!("the token server {realm} did not answer with JSON"),
        )
    })?;
    let field = |k: &str| v.get(k).and_then(|x| x.as_str());
    let token = field("token")
        .or_else(|| field("access_token"))
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            Diagnosis::new(
                Kind::BadResponse,
                format!("the token server {realm} answered without a token"),
            )
        })?;
    // A token is trusted for at most a day, whatever the realm says: a huge `expires_in`
    // must not overflow `Instant + expires_in` where it is cached.
    let expires_in = v
        .get("expires_in")
        .and_then(|x| x.as_u64())
        .filter(|&s| s > 0)
        .unwrap_or(60)
        .min(MAX_TOKEN_LIFETIME.as_secs());
    Ok(Token {
        authorization: format!("Bearer {token}"),
        expires_in: Duration::from_secs(expires_in),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_token_and_expiry() {
        let t = parse_response(br#"{"token":"abc","expires_in":300}"#, "r").unwrap();
        assert_eq!(t.authorization, "Bearer abc");
        assert_eq!(t.expires_in, Duration::from_secs(300));
        let t = parse_response(br#"{"access_token":"xyz"}"#, "r").unwrap();
        assert_eq!(t.authorization, "Bearer xyz");
        assert_eq!(t.expires_in, Duration::from_secs(60));
        assert!(parse_response(br#"{"token":""}"#, "r").is_err());
        assert!(parse_response(b"<html>", "r").is_err());
        assert!(!format!("{t:?}").contains("xyz"));
        // A huge expires_in (which overflowed `Instant + expires_in` in serve's token cache)
        // is capped.
        let t = parse_response(br#"{"token":"a","expires_in":18446744073709551615}"#, "r").unwrap();
        assert_eq!(t.expires_in, MAX_TOKEN_LIFETIME);
        assert!(std::time::Instant::now()
            .checked_add(t.expires_in)
            .is_some());
    }

    #[test]
    fn scope_defaults_to_repository_pull() {
        let c = AuthChallenge::parse(r#"Bearer realm="https://a/t",service="s""#).unwrap();
        assert_eq!(
            scope_for(&c, "library/alpine").as_deref(),
            Some("repository:library/alpine:pull")
        );
        assert_eq!(scope_for(&c, ""), None);
        let c = AuthChallenge::parse(
            r#"Bearer realm="https://a/t",service="s",scope="repository:x/y:pull""#,
        )
        .unwrap();
        assert_eq!(scope_for(&c, "").as_deref(), Some("repository:x/y:pull"));
    }

    #[test]
    fn basic_header() {
        assert_eq!(basic("u", "p"), "Basic dTpw");
    }
}
