//! The axum router: every endpoint besides the lean subscription path.

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use tidings_hub::{
    MatchType, SUBSCRIPTIONS_PREFIX, draft08_subscription_topic, draft08_subscriptions_path,
};

use crate::error::ApiError;
use crate::state::SharedState;
use crate::subscribe;

/// Where RFC 9728 protected-resource metadata lives, before the resource's path.
pub(crate) const METADATA_PREFIX: &str = "/.well-known/oauth-protected-resource";

/// Builds the router over the shared state: the hub's endpoints, the
/// dashboard at `/`, and a 404 that says where the endpoints are.
pub(crate) fn router(state: SharedState) -> Router {
    let routes = endpoints()
        .route("/", get(|| async { Html(include_str!("demo/index.html")) }))
        .route("/demo/token", get(demo_token))
        .fallback(not_found);
    with_cors(routes, state)
}

/// The hub's endpoints alone, for an application to merge into its own
/// router ([`Server::router`](crate::Server::router)): no page at `/`, no
/// fallback, and CORS on these routes only.
pub(crate) fn mountable(state: SharedState) -> Router {
    with_cors(endpoints(), state)
}

/// CORS on every route given (a layer covers the routes added before it),
/// over the shared state.
fn with_cors(routes: Router<SharedState>, state: SharedState) -> Router {
    routes
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::cors::middleware,
        ))
        .with_state(state)
}

/// Every route of the protocol, the browser client, health and metrics.
fn endpoints() -> Router<SharedState> {
    Router::new()
        // HEAD is routed explicitly on both endpoints: axum would otherwise
        // answer a HEAD with the GET handler, which subscribes.
        .route(
            "/.well-known/mercure",
            get(subscribe_route)
                .head(probe_route)
                .post(crate::publish::publish)
                .fallback(query_or_not_allowed),
        )
        .route(
            "/events",
            get(subscribe_route)
                .head(probe_route)
                .fallback(query_or_not_allowed),
        )
        .route("/.well-known/mercure/subscriptions", get(subscriptions))
        .route(
            "/.well-known/mercure/subscriptions/{topic}",
            get(subscriptions_for_topic),
        )
        .route(
            "/.well-known/mercure/subscriptions/{topic}/{subscriber}",
            get(subscription),
        )
        .route(
            "/.well-known/mercure/subscriptions/{match_type}/{match}/{subscriber}",
            get(draft08_subscription),
        )
        .route(
            "/.well-known/oauth-protected-resource/.well-known/mercure",
            get(resource_metadata),
        )
        .route("/tidings.js", get(client_module))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

/// RFC 9728 metadata of the hub as a protected resource, with Mercure
/// draft-08's members: how to bring a token, and what the hub matches.
async fn resource_metadata(State(state): State<SharedState>) -> Response {
    let body = json!({
        "resource": state.config.jwt_audience.clone().unwrap_or_else(|| state.public_url.to_string()),
        "authorization_servers": state.config.jwt_issuer,
        "authorization_details_types_supported": [crate::auth::MERCURE_DETAIL_TYPE],
        "bearer_methods_supported": ["header"],
        "mercure_cookie": crate::auth::DRAFT_08_COOKIE,
        "mercure_matcher_types_supported": ["exact", "urlpattern"],
        "mercure_subscriptions": state.config.subscriptions,
    });
    (
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no such endpoint: subscribe at GET /.well-known/mercure?topic=…, publish at POST /.well-known/mercure",
    )
}

/// A subscription arriving on a connection hyper serves: a kept-alive
/// HTTP/1.1 connection, or an HTTP/2 stream. The lean path in `conn` serves
/// fresh HTTP/1 connections.
async fn subscribe_route(
    State(state): State<SharedState>,
    version: axum::http::Version,
    peer: Option<axum::Extension<crate::conn::PeerAddr>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    // An HTTP/2 stream counts against its client's per-IP limit as an
    // HTTP/1 connection does (one connection carries many streams).
    let stream_of = match (version, peer) {
        (axum::http::Version::HTTP_2, Some(axum::Extension(peer))) => Some(peer.0.ip()),
        _ => None,
    };
    let opened = subscribe::open(&state, &headers, query.as_deref(), stream_of).await?;
    let mut builder = Response::builder().status(StatusCode::OK);
    for (name, value) in subscribe::response_headers(&opened.subscription) {
        builder = builder.header(name, value);
    }
    let body = crate::body::SubscriptionBody::new(opened);
    builder
        .body(Body::new(body))
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

/// The browser client (`clients/js/tidings.js`), embedded in the binary.
const CLIENT_MODULE: &str = include_str!("../../../clients/js/tidings.js");

/// `/tidings.js`: the browser client, revalidated by its ETag (a hash of
/// the module) after 5 minutes, so a new hub's module reaches pages soon.
async fn client_module(headers: HeaderMap) -> Response {
    use sha2::Digest as _;
    static ETAG: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let etag = ETAG.get_or_init(|| {
        let digest = sha2::Sha256::digest(CLIENT_MODULE.as_bytes());
        let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
        format!("\"{hex}\"")
    });
    let cached = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let common = [
        (header::CACHE_CONTROL, "public, max-age=300".to_owned()),
        (header::ETAG, etag.clone()),
    ];
    if cached {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    (
        common,
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        CLIENT_MODULE,
    )
        .into_response()
}

/// The largest form body a `QUERY` subscription may carry (the Mercure hub's
/// cap); more is answered 413.
const MAX_QUERY_BODY: usize = 1 << 20;

/// Mercure draft-08 lets a subscription be a `QUERY` request whose
/// form-encoded body carries parameters too (long selector lists do not fit
/// a URL): the union of both, and where one value wins (`last_event_id`)
/// the URL's. Every other method but those routed is 405.
async fn query_or_not_allowed(
    State(state): State<SharedState>,
    method: axum::http::Method,
    version: axum::http::Version,
    peer: Option<axum::Extension<crate::conn::PeerAddr>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Body,
) -> Result<Response, ApiError> {
    if method.as_str() != "QUERY" {
        return Err(subscribe::method_not_allowed());
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/x-www-form-urlencoded");
    let media = content_type.split(';').next().unwrap_or("").trim();
    if !media.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "a QUERY subscription's body is a form (application/x-www-form-urlencoded), not {media:?}"
            ),
        ));
    }
    let bytes = axum::body::to_bytes(body, MAX_QUERY_BODY)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("QUERY body larger than {MAX_QUERY_BODY} bytes"),
            )
        })?;
    let body = std::str::from_utf8(&bytes)
        .map_err(|_| ApiError::bad_request("the QUERY body is not UTF-8"))?;
    // The body first: the last value of a parameter wins, so the URL's does.
    let joined = match query.as_deref() {
        Some(query) if !body.is_empty() => format!("{body}&{query}"),
        Some(query) => query.to_owned(),
        None => body.to_owned(),
    };
    subscribe_route(State(state), version, peer, headers, RawQuery(Some(joined))).await
}

/// Lifetime of the demo page's tokens: long enough to play, short enough
/// that a leaked one is soon useless.
const DEMO_TOKEN_TTL: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// In development mode only: a short-lived token for the demo page, so it can
/// publish and read private updates without a long-lived secret in the page.
/// Otherwise `{"token": null}` with the reason: a 200, because a 404 would be
/// logged as an error in the console of every page load.
async fn demo_token(State(state): State<SharedState>) -> Response {
    let body = match crate::development_token(&state, true, DEMO_TOKEN_TTL) {
        Some(token) => json!({ "token": token, "expiresIn": DEMO_TOKEN_TTL.as_secs() }),
        None => json!({
            "token": null,
            "reason": "demo tokens exist only in development mode (no JWT key configured)",
        }),
    };
    ([(header::CACHE_CONTROL, "no-store")], axum::Json(body)).into_response()
}

/// `HEAD`: the stream's headers after the same checks, no subscription.
async fn probe_route(
    State(state): State<SharedState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let mut builder = Response::builder().status(StatusCode::OK);
    for (name, value) in subscribe::probe(&state, &headers, query.as_deref())? {
        builder = builder.header(name, value);
    }
    builder
        .body(Body::empty())
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

/// `ready` (200) or why not (503), then what the log's engine says: the
/// servers reached and the quorum.
async fn readyz(State(state): State<SharedState>) -> Response {
    let ready = state.hub.ready().await;
    let status = match state.hub.log_status().await {
        Ok(status) => {
            let mut text = format!("engine: {}\n", status.engine);
            for server in &status.servers {
                text.push_str(&format!("server: {server}\n"));
            }
            if let Some(quorum) = &status.quorum {
                text.push_str(&format!("quorum: {quorum}\n"));
            }
            text
        }
        Err(error) => format!("engine: cannot say ({error})\n"),
    };
    match ready {
        Ok(()) => format!("ready\n{status}").into_response(),
        Err(error) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{error}\n{status}"),
        )
        .retry_after(1)
        .into_response(),
    }
}

async fn metrics(State(state): State<SharedState>) -> Response {
    if let Some(address) = state.config.metrics_listen {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            format!("metrics are served on their own listener ({address}, metrics-listen)"),
        )
        .into_response();
    }
    render_metrics(&state)
}

/// The metrics listener's router: `/metrics` and nothing else.
pub(crate) fn metrics_router(state: SharedState) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(|State(state): State<SharedState>| async move { render_metrics(&state) }),
        )
        .fallback(|| async {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "this listener serves GET /metrics only",
            )
        })
        .with_state(state)
}

fn render_metrics(state: &SharedState) -> Response {
    match &state.metrics {
        Some(handle) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            handle.render(),
        )
            .into_response(),
        None => ApiError::new(
            StatusCode::NOT_FOUND,
            "metrics are not enabled in this process",
        )
        .into_response(),
    }
}

/// Mercure's subscription API needs it enabled and a subscriber token whose
/// `subscribe` selectors match the requested URL.
fn authorize_presence(
    state: &SharedState,
    headers: &HeaderMap,
    query: Option<&str>,
    path: &str,
) -> Result<(), ApiError> {
    if !state.config.subscriptions {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "the subscription API is off: start the hub with --subscriptions",
        ));
    }
    let claims = subscribe::subscriber_claims(state, headers, query)?.ok_or_else(|| {
        ApiError::unauthorized("the subscription API needs a subscriber token")
            .bearer_challenge(None, &state.metadata_url())
    })?;
    let allowed = claims
        .subscribe_matchers()
        .unwrap_or_default()
        .iter()
        .any(|m| state.hub.matcher(m).is_ok_and(|s| s.matches(path)));
    if allowed {
        Ok(())
    } else {
        Err(state.insufficient_scope(if claims.grants.is_some() {
            format!("the token's authorization_details grant no subscribe on {path}")
        } else {
            format!("the token's mercure.subscribe selectors do not match {path}")
        }))
    }
}

/// The subscriptions the API lists, each in its selector's draft's shape.
async fn documents(
    state: &SharedState,
    filter: impl Fn(MatchType, &str, &str) -> bool,
) -> Result<Vec<serde_json::Value>, ApiError> {
    let mut list = Vec::new();
    for info in state.hub.subscriptions().await? {
        for (match_type, selector) in info.selectors() {
            if filter(match_type, selector, &info.subscriber) {
                list.push(info.document(match_type, selector, true));
            }
        }
    }
    Ok(list)
}

/// Draft-08 moved the API's cursor out of the body into a `Link` header.
fn cursor_link(state: &SharedState) -> String {
    format!(
        "<{}>; rel=\"mercure\"; last-event-id=\"{}\"; type=\"mercure\"; content-type=\"application/json\"",
        state.public_url,
        state.hub.last_event_id().replace(['"', '\\'], "")
    )
}

/// Whether a request asks for draft-08's plain JSON (`Accept:
/// application/json` without JSON-LD) rather than draft-07's JSON-LD.
fn wants_plain_json(headers: &HeaderMap) -> bool {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    accept.contains("application/json") && !accept.contains("ld+json")
}

/// A list in draft-08's shape (plain JSON, the cursor in `Link`).
fn draft08_list(state: &SharedState, id: String, list: Vec<serde_json::Value>) -> Response {
    draft08_doc(
        state,
        json!({"id": id, "type": "subscriptions", "subscriptions": list}),
    )
}

fn draft08_doc(state: &SharedState, doc: serde_json::Value) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/json".to_owned()),
            (header::LINK, cursor_link(state)),
        ],
        doc.to_string(),
    )
        .into_response()
}

/// A list in draft-07's shape (JSON-LD, the cursor in `lastEventID`), with
/// draft-08's `Link` too.
fn draft07_list(state: &SharedState, id: String, list: Vec<serde_json::Value>) -> Response {
    let mut response = json_ld(json!({
        "@context": "https://mercure.rocks/",
        "id": id,
        "type": "Subscriptions",
        "lastEventID": state.hub.last_event_id(),
        "subscriptions": list,
    }));
    if let Ok(link) = header::HeaderValue::from_str(&cursor_link(state)) {
        response.headers_mut().insert(header::LINK, link);
    }
    response
}

fn draft08_type(segment: &str) -> Option<MatchType> {
    match segment {
        "exact" => Some(MatchType::Exact),
        "urlpattern" => Some(MatchType::UrlPattern),
        _ => None,
    }
}

async fn subscriptions(
    State(state): State<SharedState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    authorize_presence(&state, &headers, query.as_deref(), SUBSCRIPTIONS_PREFIX)?;
    let list = documents(&state, |_, _, _| true).await?;
    Ok(if wants_plain_json(&headers) {
        draft08_list(&state, SUBSCRIPTIONS_PREFIX.into(), list)
    } else {
        draft07_list(&state, SUBSCRIPTIONS_PREFIX.into(), list)
    })
}

async fn subscriptions_for_topic(
    State(state): State<SharedState>,
    Path(topic): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let id = format!("{SUBSCRIPTIONS_PREFIX}/{}", escape(&topic));
    authorize_presence(&state, &headers, query.as_deref(), &id)?;
    let list = documents(&state, |t, s, _| t == MatchType::Topic && s == topic).await?;
    Ok(draft07_list(&state, id, list))
}

/// Two segments: draft-08's `{match_type}/{match}` when the first is a
/// matcher type, else draft-07's `{topic}/{subscriber}`.
async fn subscription(
    State(state): State<SharedState>,
    Path((first, second)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    if let Some(match_type) = draft08_type(&first) {
        let id = draft08_subscriptions_path(match_type, &second);
        authorize_presence(&state, &headers, query.as_deref(), &id)?;
        let list = documents(&state, |t, s, _| t == match_type && s == second).await?;
        return Ok(draft08_list(&state, id, list));
    }
    let (topic, subscriber) = (first, second);
    let id = tidings_hub::subscription_topic(&topic, &subscriber);
    authorize_presence(&state, &headers, query.as_deref(), &id)?;
    let found = state.hub.subscriptions().await?.into_iter().find(|info| {
        info.subscriber == subscriber
            && info
                .selectors()
                .any(|(t, s)| t == MatchType::Topic && s == topic)
    });
    match found {
        Some(info) => {
            let mut doc = info.to_json(&topic, true);
            doc["@context"] = json!("https://mercure.rocks/");
            doc["lastEventID"] = json!(state.hub.last_event_id());
            Ok(json_ld(doc))
        }
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no such active subscription",
        )),
    }
}

/// Draft-08's `{match_type}/{match}/{subscriber}`.
async fn draft08_subscription(
    State(state): State<SharedState>,
    Path((kind, selector, subscriber)): Path<(String, String, String)>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let Some(match_type) = draft08_type(&kind) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no such subscription path: /subscriptions/{exact|urlpattern}/{match}/{subscriber}",
        ));
    };
    let id = draft08_subscription_topic(match_type, &selector, &subscriber);
    authorize_presence(&state, &headers, query.as_deref(), &id)?;
    let found = state.hub.subscriptions().await?.into_iter().find(|info| {
        info.subscriber == subscriber
            && info
                .selectors()
                .any(|(t, s)| t == match_type && s == selector)
    });
    match found {
        Some(info) => Ok(draft08_doc(
            &state,
            info.document(match_type, &selector, true),
        )),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no such active subscription",
        )),
    }
}

/// Mercure's subscription API answers JSON-LD.
fn json_ld(doc: serde_json::Value) -> Response {
    (
        [(header::CONTENT_TYPE, "application/ld+json")],
        doc.to_string(),
    )
        .into_response()
}

fn escape(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
