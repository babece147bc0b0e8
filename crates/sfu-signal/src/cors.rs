//! CORS for the WHIP/WHEP endpoints, so a page served from another origin can publish and play.
//!
//! Origins come from `http.cors_origins`. The endpoints authorise with bearer tokens, never with
//! cookies, so `Access-Control-Allow-Credentials` is never sent and `"*"` is a safe answer.
//! A refused origin gets no CORS headers at all: the browser then blocks the page's request.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

use crate::state::AppState;

/// What a browser may send: WHIP/WHEP POST, trickle PATCH, DELETE.
pub const ALLOW_METHODS: &str = "POST, PATCH, DELETE, OPTIONS";
/// Request headers a WHIP/WHEP client sends that are not CORS-safelisted.
pub const ALLOW_HEADERS: &str = "Authorization, Content-Type, If-Match";
/// Response headers a page needs to read: the session's URL, ICE servers, the trickle ETag.
pub const EXPOSE_HEADERS: &str = "Location, Link, ETag, Accept-Patch, Accept-Post";
/// Seconds a browser may cache a preflight (Chromium caps it at 7200).
pub const MAX_AGE_SECS: &str = "7200";

/// How to treat one request.
#[derive(Debug)]
pub enum Cors {
    /// A preflight: answered here with these headers (only `Vary` when the origin is refused).
    Preflight(HeaderMap),
    /// Anything else: these headers are added to the handler's response.
    Actual(HeaderMap),
}

/// The `Access-Control-Allow-Origin` value for `origin`, or `None` when it is not allowed.
pub fn allow_origin(allowed: &[String], origin: &str) -> Option<HeaderValue> {
    if allowed.iter().any(|a| a == "*") {
        return Some(HeaderValue::from_static("*"));
    }
    allowed.iter().any(|a| a.eq_ignore_ascii_case(origin)).then(|| HeaderValue::from_str(origin).ok()).flatten()
}

/// A preflight is an OPTIONS request naming the method the page wants to send.
pub fn is_preflight(method: &Method, headers: &HeaderMap) -> bool {
    method == Method::OPTIONS
        && headers.contains_key(header::ORIGIN)
        && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

/// The CORS answer to a request, from the configured origins alone.
pub fn decide(allowed: &[String], method: &Method, headers: &HeaderMap) -> Cors {
    let mut out = HeaderMap::new();
    // With a list of origins the answer depends on Origin: caches must keep them apart.
    if !allowed.iter().any(|a| a == "*") && !allowed.is_empty() {
        out.insert(header::VARY, HeaderValue::from_static("Origin"));
    }
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let permitted = origin.and_then(|o| allow_origin(allowed, o));
    let preflight = is_preflight(method, headers);
    if let Some(value) = permitted {
        out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
        if preflight {
            out.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(ALLOW_METHODS));
            out.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static(ALLOW_HEADERS));
            out.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static(MAX_AGE_SECS));
        } else {
            out.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static(EXPOSE_HEADERS));
        }
    }
    if preflight { Cors::Preflight(out) } else { Cors::Actual(out) }
}

/// Middleware on the WHIP/WHEP routes: answers preflights, decorates every other response.
pub async fn layer(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    match decide(&state.config.http.cors_origins, request.method(), request.headers()) {
        Cors::Preflight(headers) => (StatusCode::NO_CONTENT, headers).into_response(),
        Cors::Actual(headers) => {
            let mut response = next.run(request).await;
            response.headers_mut().extend(headers);
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn list(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn get<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
        h.get(name).map(|v| v.to_str().unwrap())
    }

    const PAGE: &str = "http://127.0.0.1:18100";

    #[test]
    fn origin_decisions() {
        // (allowed list, request origin, expected Access-Control-Allow-Origin)
        let cases: &[(&[&str], &str, Option<&str>)] = &[
            (&["*"], PAGE, Some("*")),
            (&["*"], "null", Some("*")),
            (&[PAGE], PAGE, Some(PAGE)),
            (&["HTTP://127.0.0.1:18100"], PAGE, Some(PAGE)),
            (&["https://a.example", PAGE], PAGE, Some(PAGE)),
            (&[PAGE], "http://127.0.0.1:18101", None),
            (&[PAGE], "http://127.0.0.1", None),
            (&["https://a.example"], "http://a.example", None),
            (&[], PAGE, None),
        ];
        for (allowed, origin, want) in cases {
            let got = allow_origin(&list(allowed), origin);
            assert_eq!(got.as_ref().map(|v| v.to_str().unwrap()), *want, "{allowed:?} / {origin}");
        }
    }

    #[test]
    fn allowed_preflight_gets_methods_headers_and_max_age() {
        let h = request(&[("origin", PAGE), ("access-control-request-method", "POST")]);
        let Cors::Preflight(out) = decide(&list(&[PAGE]), &Method::OPTIONS, &h) else { panic!("not a preflight") };
        assert_eq!(get(&out, "access-control-allow-origin"), Some(PAGE));
        assert_eq!(get(&out, "access-control-allow-methods"), Some(ALLOW_METHODS));
        for needed in ["Authorization", "Content-Type", "If-Match"] {
            assert!(get(&out, "access-control-allow-headers").unwrap().contains(needed), "{needed}");
        }
        assert_eq!(get(&out, "access-control-max-age"), Some("7200"));
        assert_eq!(get(&out, "vary"), Some("Origin"));
        assert!(out.get("access-control-allow-credentials").is_none());
    }

    #[test]
    fn refused_preflight_gets_no_cors_headers() {
        let h = request(&[("origin", "http://evil.example"), ("access-control-request-method", "POST")]);
        let Cors::Preflight(out) = decide(&list(&[PAGE]), &Method::OPTIONS, &h) else { panic!("not a preflight") };
        assert!(out.keys().all(|k| !k.as_str().starts_with("access-control-")), "{out:?}");
        let Cors::Preflight(out) = decide(&[], &Method::OPTIONS, &h) else { panic!("not a preflight") };
        assert!(out.is_empty(), "{out:?}");
    }

    #[test]
    fn actual_requests_expose_location_link_and_etag() {
        let h = request(&[("origin", PAGE)]);
        let Cors::Actual(out) = decide(&list(&["*"]), &Method::POST, &h) else { panic!("a preflight") };
        assert_eq!(get(&out, "access-control-allow-origin"), Some("*"));
        let exposed = get(&out, "access-control-expose-headers").unwrap();
        for name in ["Location", "Link", "ETag"] {
            assert!(exposed.contains(name), "{name} in {exposed}");
        }
        assert!(out.get("access-control-allow-methods").is_none());
        assert!(out.get("vary").is_none(), "a wildcard answer does not vary");
    }

    #[test]
    fn requests_without_origin_or_preflight_headers_are_not_cors() {
        // Same-origin or non-browser requests: nothing to add.
        let Cors::Actual(out) = decide(&list(&["*"]), &Method::POST, &HeaderMap::new()) else { panic!() };
        assert!(out.is_empty());
        // A plain OPTIONS (a WHIP client asking what the endpoint takes) is not a preflight; it
        // reaches the OPTIONS handler.
        let h = request(&[("origin", PAGE)]);
        assert!(matches!(decide(&list(&["*"]), &Method::OPTIONS, &h), Cors::Actual(_)));
        assert!(matches!(decide(&list(&["*"]), &Method::OPTIONS, &HeaderMap::new()), Cors::Actual(_)));
        let h = request(&[("access-control-request-method", "POST")]);
        assert!(!is_preflight(&Method::OPTIONS, &h));
    }
}
