//! `WWW-Authenticate` challenges (RFC 7235) as registries send them.

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthScheme {
    Bearer,
    Basic,
    Other(String),
}

/// One parsed challenge: `Bearer realm="…",service="…",scope="…"` or `Basic realm="…"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthChallenge {
    pub scheme: AuthScheme,
    pub params: Vec<(String, String)>,
}

impl AuthChallenge {
    /// Parse a header value. Returns every challenge it holds (a header may list several).
    pub fn parse_all(header: &str) -> Vec<AuthChallenge> {
        let mut out = Vec::new();
        let mut p = Parser {
            s: header.as_bytes(),
            i: 0,
        };
        loop {
            p.skip_ws_commas();
            let Some(token) = p.token() else { break };
            let scheme = match token.to_ascii_lowercase().as_str() {
                "bearer" => AuthScheme::Bearer,
                "basic" => AuthScheme::Basic,
                _ => AuthScheme::Other(token.clone()),
            };
            let mut params = Vec::new();
            loop {
                p.skip_ws_commas();
                let save = p.i;
                let Some(name) = p.token() else { break };
                p.skip_ws();
                if !p.eat(b'=') {
                    // The next scheme starts here.
                    p.i = save;
                    break;
                }
                p.skip_ws();
                let value = if p.peek() == Some(b'"') {
                    p.quoted()
                } else {
                    p.token().unwrap_or_default()
                };
                params.push((name.to_ascii_lowercase(), value));
            }
            out.push(AuthChallenge { scheme, params });
        }
        out
    }

    /// The first challenge in a header value.
    pub fn parse(header: &str) -> Option<AuthChallenge> {
        Self::parse_all(header).into_iter().next()
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn realm(&self) -> Option<&str> {
        self.param("realm")
    }

    pub fn service(&self) -> Option<&str> {
        self.param("service")
    }

    pub fn scope(&self) -> Option<&str> {
        self.param("scope")
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    fn skip_ws_commas(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b',')) {
            self.i += 1;
        }
    }

    fn token(&mut self) -> Option<String> {
        let start = self.i;
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~/:".contains(&c) {
                self.i += 1;
            } else {
                break;
            }
        }
        self.s
            .get(start..self.i)
            .filter(|t| !t.is_empty())
            .map(|t| String::from_utf8_lossy(t).into_owned())
    }

    fn quoted(&mut self) -> String {
        let mut out = Vec::new();
        self.i += 1; // opening quote
        while let Some(c) = self.peek() {
            self.i += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    if let Some(n) = self.peek() {
                        out.push(n);
                        self.i += 1;
                    }
                }
                _ => out.push(c),
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hub_bearer() {
        let c = AuthChallenge::parse(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull""#,
        )
        .unwrap();
        assert_eq!(c.scheme, AuthScheme::Bearer);
        assert_eq!(c.realm(), Some("https://auth.docker.io/token"));
        assert_eq!(c.service(), Some("registry.docker.io"));
        assert_eq!(c.scope(), Some("repository:library/alpine:pull"));
    }

    #[test]
    fn basic_and_several() {
        let all = AuthChallenge::parse_all(
            r#"Basic realm="Registry Realm", Bearer realm="x", service=svc"#,
        );
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].scheme, AuthScheme::Basic);
        assert_eq!(all[0].realm(), Some("Registry Realm"));
        assert_eq!(all[1].service(), Some("svc"));
        let esc = AuthChallenge::parse(r#"Bearer realm="a\"b""#).unwrap();
        assert_eq!(esc.realm(), Some("a\"b"));
    }
}
