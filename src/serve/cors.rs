//! Which web pages may call the server from a browser (CORS). A request without an `Origin`
//! header (curl, SDKs, editors) is not a browser's and is served as it is. Pages served from
//! this machine (http or https on localhost, 127.0.0.1 or [::1], any port) are allowed, as are
//! the origins given with `--allow-origin` (`*` for any). Any other page gets 403: otherwise any
//! site a person visits could make their server generate, even without reading the answer.

/// What a request's `Origin` header means for it.
#[derive(Debug, PartialEq)]
pub enum Cors {
    /// No `Origin` header: not a browser's cross-origin request.
    NotAsked,
    /// An allowed origin, echoed back in `Access-Control-Allow-Origin`.
    Allowed(String),
    Refused(String),
}

pub fn check(origin: Option<&str>, allowed: &[String]) -> Cors {
    let Some(origin) = origin else { return Cors::NotAsked };
    if is_local(origin) || allowed.iter().any(|a| a == "*" || a.trim_end_matches('/') == origin) {
        Cors::Allowed(origin.to_string())
    } else {
        Cors::Refused(origin.to_string())
    }
}

/// `scheme://host[:port]` with a loopback host.
fn is_local(origin: &str) -> bool {
    let Some(rest) = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://")) else {
        return false;
    };
    // The IPv6 host holds colons of its own, so it is split off by name.
    let (host, port) = match rest.strip_prefix("[::1]") {
        Some(port) => ("[::1]", port),
        None => rest.find(':').map_or((rest, ""), |at| rest.split_at(at)),
    };
    let port_ok = port.is_empty() || port.strip_prefix(':').is_some_and(|p| p.parse::<u16>().is_ok());
    matches!(host, "localhost" | "127.0.0.1" | "[::1]") && port_ok
}

/// Headers every answer to an allowed origin carries.
pub fn answer_headers(origin: &str) -> Vec<(&'static str, String)> {
    vec![
        ("Access-Control-Allow-Origin", origin.to_string()),
        ("Vary", "Origin".to_string()),
        ("Access-Control-Expose-Headers", super::http::DROPPED_MESSAGES.to_string()),
    ]
}

/// The answer to a browser's preflight (OPTIONS): what a page may send.
pub fn preflight_headers(origin: &str) -> Vec<(&'static str, String)> {
    let mut headers = answer_headers(origin);
    headers.push(("Access-Control-Allow-Methods", "GET, POST, OPTIONS".into()));
    headers.push(("Access-Control-Allow-Headers", "Authorization, Content-Type".into()));
    headers.push(("Access-Control-Max-Age", "600".into()));
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_on_this_machine_and_listed_origins_are_allowed_others_refused() {
        let listed = vec!["https://chat.example.org/".to_string()];
        for local in ["http://localhost:3000", "https://127.0.0.1", "http://[::1]:8080", "http://localhost"] {
            assert_eq!(check(Some(local), &[]), Cors::Allowed(local.into()), "{local}");
        }
        assert_eq!(check(Some("https://chat.example.org"), &listed), Cors::Allowed("https://chat.example.org".into()));
        for foreign in
            ["https://evil.example", "http://localhost.evil.example", "http://127.0.0.1.nip.io:80", "null", "file://"]
        {
            assert_eq!(check(Some(foreign), &listed), Cors::Refused(foreign.into()), "{foreign}");
        }
        assert_eq!(
            check(Some("https://anything.example"), &["*".into()]),
            Cors::Allowed("https://anything.example".into())
        );
        assert_eq!(check(None, &[]), Cors::NotAsked);
    }
}
