//! The fake's HTTP side: auth, the 10-connection limit, latency, faults, routing, and the request log.

use super::audience::FakeList;
use super::faults::{Fault, RequestKind, Target};
use super::Shared;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::Serialize;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Mailchimp allows this many simultaneous connections per user; more get 429.
pub const CONNECTION_LIMIT: usize = 10;

/// One request as the fake received it, for assertions.
#[derive(Debug, Clone, Serialize)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub query: String,
    pub body: Value,
    pub status: u16,
    /// The JSON the fake answered with (null for no body, or when bodies are not kept).
    pub answer: Value,
    /// The programmed fault this request met, if any.
    pub fault: Option<String>,
    /// Milliseconds since the fake started.
    pub received_ms: u64,
    pub answered_ms: u64,
}

pub fn router(shared: Arc<Shared>) -> axum::Router {
    axum::Router::new().fallback(handle).with_state(shared)
}

/// Waits until `at`, to well under a millisecond: tokio's timer rounds up to whole milliseconds,
/// which would add half a millisecond to every answer on average; the last stretch is slept by
/// the system clock on a blocking thread.
async fn answer_at_precisely(at: tokio::time::Instant) {
    const COARSE: std::time::Duration = std::time::Duration::from_millis(2);
    if at.saturating_duration_since(tokio::time::Instant::now()) > COARSE {
        tokio::time::sleep_until(at - COARSE).await;
    }
    let rest = at.saturating_duration_since(tokio::time::Instant::now());
    if !rest.is_zero() {
        let _ = tokio::task::spawn_blocking(move || std::thread::sleep(rest)).await;
    }
}

/// Decrements the in-flight count however the request ends.
struct InFlightGuard<'a>(&'a Shared);

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn handle(State(shared): State<Arc<Shared>>, request: axum::extract::Request) -> Response {
    // The latency counts from the request's first byte (its head), as a server's does, not from
    // the end of its body.
    let arrived = tokio::time::Instant::now();
    let (head, body) = request.into_parts();
    let (method, uri, headers): (Method, Uri, HeaderMap) = (head.method, head.uri, head.headers);
    let Ok(body) = axum::body::to_bytes(body, usize::MAX).await else {
        return problem(StatusCode::BAD_REQUEST, "Bad Request", "The request body could not be read.");
    };
    let path = uri.path().to_string();
    let query = uri.query().unwrap_or("").to_string();
    if let Some(rest) = path.strip_prefix("/_fake/") {
        return admin(&shared, &method, rest, &body);
    }
    let received_ms = shared.elapsed_ms();
    let now_in_flight = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    let _guard = InFlightGuard(&shared);
    shared.peak_in_flight.fetch_max(now_in_flight, Ordering::SeqCst);
    let mut fault = None;
    let response = if now_in_flight > shared.connection_limit.load(Ordering::SeqCst) {
        problem(
            StatusCode::TOO_MANY_REQUESTS,
            "Too Many Requests",
            "You have exceeded the limit of 10 simultaneous connections.",
        )
    } else {
        let is_batch = method == Method::POST && path.split('/').filter(|s| !s.is_empty()).count() == 3;
        let kind = match () {
            _ if is_batch => RequestKind::Batch,
            _ if method == Method::POST && path.ends_with("/events") => RequestKind::Event,
            _ if path.contains("/members/") => RequestKind::Contact,
            _ => RequestKind::Other,
        };
        fault = shared.faults.lock().expect("fault lock").take(kind);
        // The base latency is the time to the answer, work included (the work is done on arrival);
        // jitter, per-batch delays and delay faults come on top, before the work, so that a delayed
        // request is also carried out later.
        let answer_at = arrived + *shared.latency.lock().expect("latency lock");
        let mut delay = shared.latency_jitter.lock().expect("latency lock").mul_f64(fastrand::f64());
        if is_batch {
            delay += shared.batch_delays.lock().expect("latency lock").pop_front().unwrap_or_default();
        }
        if let Some(Fault::Delay { ms }) = fault {
            delay += std::time::Duration::from_millis(ms);
        }
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let response = match &fault {
            Some(f) if !f.applies_request() => fault_response(f, &headers),
            Some(Fault::ResetMidResponse) => {
                let _applied = api(&shared, &method, &path, &query, &headers, &body);
                reset_mid_response()
            }
            _ => api(&shared, &method, &path, &query, &headers, &body),
        };
        answer_at_precisely(answer_at).await;
        response
    };
    let request = RecordedRequest {
        method: method.to_string(),
        path,
        query,
        body: Value::Null,
        status: response.status().as_u16(),
        answer: Value::Null,
        fault: fault.as_ref().map(|f| f.label()),
        received_ms,
        answered_ms: shared.elapsed_ms(),
    };
    record(&shared, request, &body, response, fault.as_ref()).await
}

/// Keeps a request in the fake's log, with its body and the JSON it was answered with when bodies
/// are kept (not for an answer that breaks off on purpose), and hands the answer on.
async fn record(
    shared: &Shared,
    mut request: RecordedRequest,
    body: &[u8],
    response: Response,
    fault: Option<&Fault>,
) -> Response {
    let keep = shared.keep_bodies.load(Ordering::Relaxed);
    let response = match fault {
        Some(Fault::ResetMidResponse | Fault::ResetBeforeRead) => response,
        _ if keep => {
            let (parts, answer_body) = response.into_parts();
            let bytes = axum::body::to_bytes(answer_body, usize::MAX).await.unwrap_or_default();
            request.answer = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            Response::from_parts(parts, Body::from(bytes))
        }
        _ => response,
    };
    if keep {
        request.body = serde_json::from_slice(body).unwrap_or(Value::Null);
    }
    shared.requests.lock().expect("request log lock").push(request);
    response
}

fn api(
    shared: &Shared,
    method: &Method,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    if let Err(response) = authorize(shared, headers) {
        return *response;
    }
    let Some(rest) = path.strip_prefix("/3.0") else { return not_found() };
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    // Parsed before the audience is locked, so that concurrent requests parse in parallel.
    let parsed = (method == Method::POST).then(|| serde_json::from_slice::<Value>(body));
    let mut lists = shared.lists.lock().expect("audience lock");
    if let [_, id, "interest-categories", ..] = segments.as_slice() {
        let Some(list) = lists.iter_mut().find(|l| l.id == *id) else { return not_found() };
        return groups_api(list, method.as_str(), &segments[3..], query, parsed);
    }
    if let [_, id, "members", ..] = segments.as_slice() {
        let Some(list) = lists.iter_mut().find(|l| l.id == *id) else { return not_found() };
        return members_api(list, method.as_str(), &segments[3..], query, body, parsed);
    }
    match (method.as_str(), segments.as_slice()) {
        ("GET", ["ping"]) => json_response(StatusCode::OK, json!({"health_status": "Everything's Chimpy!"})),
        ("GET", ["lists"]) => lists_page(&lists, query),
        ("GET", ["lists", id]) => match lists.iter().find(|l| l.id == *id) {
            Some(list) => json_response(StatusCode::OK, partial(list.info(), query)),
            None => not_found(),
        },
        ("GET", ["lists", id, "merge-fields"]) => match lists.iter().find(|l| l.id == *id) {
            Some(list) => merge_fields_page(list, query),
            None => not_found(),
        },
        ("POST", ["lists", id]) => {
            let Some(list) = lists.iter_mut().find(|l| l.id == *id) else { return not_found() };
            let Some(Ok(body)) = parsed else { return json_parse_error() };
            batch_subscribe(list, &body, query)
        }
        _ => not_found(),
    }
}

/// Mailchimp's answer to a body that is not JSON.
fn json_parse_error() -> Response {
    problem(
        StatusCode::BAD_REQUEST,
        "JSON Parse Exception",
        "We encountered an unspecified JSON parsing error.",
    )
}

/// 204 when the contact was there, else Mailchimp's 404.
fn no_content_if(found: bool) -> Response {
    if found {
        StatusCode::NO_CONTENT.into_response()
    } else {
        not_found()
    }
}

fn rejection_response(rejection: &super::audience::Rejection) -> Response {
    let errors: Vec<Value> =
        rejection.errors.iter().map(|(f, m)| json!({"field": f, "message": m})).collect();
    let status = StatusCode::from_u16(rejection.status).unwrap_or(StatusCode::BAD_REQUEST);
    problem_with(status, &rejection.title, &rejection.detail, json!(errors))
}

/// A query parameter's value, with `%2C` read as a comma.
fn param(query: &str, name: &str) -> Option<String> {
    query
        .split('&')
        .find_map(|p| p.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
        .map(|v| v.replace("%2C", ",").replace("%2c", ","))
}

fn number_param(query: &str, name: &str) -> Option<usize> {
    param(query, name).and_then(|v| v.parse().ok())
}

fn field_list(query: &str, name: &str) -> Option<Vec<String>> {
    param(query, name).map(|v| v.split(',').filter(|f| !f.is_empty()).map(str::to_string).collect())
}

/// Mailchimp's partial responses: `fields` keeps only the named fields and `exclude_fields`
/// drops them, in dot notation (`members.email_address`), reaching into arrays of objects.
fn partial(value: Value, query: &str) -> Value {
    let split = |list: Vec<String>| -> Vec<Vec<String>> {
        list.iter().map(|f| f.split('.').map(str::to_string).collect()).collect()
    };
    let mut value = match field_list(query, "fields") {
        Some(fields) => keep(value, &split(fields)),
        None => value,
    };
    for path in split(field_list(query, "exclude_fields").unwrap_or_default()) {
        drop_path(&mut value, &path);
    }
    value
}

fn keep(value: Value, paths: &[Vec<String>]) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.into_iter().map(|v| keep(v, paths)).collect()),
        Value::Object(object) => Value::Object(
            object
                .into_iter()
                .filter_map(|(key, v)| {
                    let rest: Vec<Vec<String>> =
                        paths.iter().filter(|p| p[0] == key).map(|p| p[1..].to_vec()).collect();
                    match () {
                        _ if rest.is_empty() => None,
                        _ if rest.iter().any(Vec::is_empty) => Some((key, v)),
                        _ => Some((key, keep(v, &rest))),
                    }
                })
                .collect(),
        ),
        other => other,
    }
}

fn drop_path(value: &mut Value, path: &[String]) {
    match value {
        Value::Array(items) => items.iter_mut().for_each(|v| drop_path(v, path)),
        Value::Object(object) => match path {
            [] => {}
            [last] => {
                object.remove(last);
            }
            [first, rest @ ..] => {
                if let Some(inner) = object.get_mut(first) {
                    drop_path(inner, rest);
                }
            }
        },
        _ => {}
    }
}

/// Basic auth (any user name, the key as password) or a Bearer token, as Mailchimp accepts.
fn authorize(shared: &Shared, headers: &HeaderMap) -> Result<(), Box<Response>> {
    let header = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
    match basic_password(header) {
        None => Err(Box::new(problem(
            StatusCode::UNAUTHORIZED,
            "API Key Missing",
            "Your request did not include an API key.",
        ))),
        Some(key) if key == shared.api_key => Ok(()),
        Some(_) => Err(Box::new(problem(
            StatusCode::UNAUTHORIZED,
            "API Key Invalid",
            "Your API key may be invalid, or you've attempted to access the wrong datacenter.",
        ))),
    }
}

/// `/lists/{id}/members…`: one member or pages of them, and the calls on one member.
fn members_api(
    list: &mut FakeList,
    method: &str,
    rest: &[&str],
    query: &str,
    body: &[u8],
    parsed: Option<Result<Value, serde_json::Error>>,
) -> Response {
    match (method, rest) {
        ("GET", [hash]) => match list.members.get(*hash).map(|m| list.member_json(m)) {
            Some(member) => json_response(StatusCode::OK, partial(member, query)),
            None => not_found(),
        },
        ("GET", []) => {
            let page = list.members_page(
                number_param(query, "offset").unwrap_or(0),
                number_param(query, "count").unwrap_or(10).min(1000),
            );
            json_response(StatusCode::OK, partial(page, query))
        }
        ("PATCH", [hash]) => {
            let Ok(body) = serde_json::from_slice::<Value>(body) else { return json_parse_error() };
            match list.patch_member(hash, &body) {
                Ok(Some(member)) => json_response(StatusCode::OK, partial(member, query)),
                Ok(None) => not_found(),
                Err(rejection) => rejection_response(&rejection),
            }
        }
        ("DELETE", [hash]) => no_content_if(list.archive(hash)),
        ("POST", [hash, "actions", "delete-permanent"]) => no_content_if(list.delete_permanently(hash)),
        ("POST", [hash, "events"]) => {
            let Some(Ok(body)) = parsed else { return json_parse_error() };
            match list.post_event(hash, &body) {
                Ok(found) => no_content_if(found),
                Err(rejection) => rejection_response(&rejection),
            }
        }
        ("GET", [hash, "events"]) => match list.events_of(hash) {
            Some(events) => json_response(StatusCode::OK, partial(events, query)),
            None => not_found(),
        },
        ("POST", [hash, "tags"]) => {
            let Some(Ok(body)) = parsed else { return json_parse_error() };
            match list.set_tags(hash, &body) {
                Ok(found) => no_content_if(found),
                Err(rejection) => rejection_response(&rejection),
            }
        }
        _ => not_found(),
    }
}

/// `POST /lists/{id}`: batch subscribe, answered with the fields the query asks for.
fn batch_subscribe(list: &mut FakeList, body: &Value, query: &str) -> Response {
    let skip = query.split('&').any(|p| p == "skip_merge_validation=true");
    // Partial responses, as for every endpoint: building member objects nobody asked for is skipped.
    let (fields, excluded) =
        (field_list(query, "fields"), field_list(query, "exclude_fields").unwrap_or_default());
    let wanted = |name: &str| {
        !excluded.iter().any(|f| f == name)
            && fields.as_ref().is_none_or(|f| f.iter().any(|f| f.split('.').next() == Some(name)))
    };
    let members_in_answer = wanted("new_members") || wanted("updated_members");
    match list.batch_subscribe(body, skip, members_in_answer).map(|answer| partial(answer, query)) {
        Ok(answer) => json_response(StatusCode::OK, answer),
        Err(rejection) => rejection_response(&rejection),
    }
}

/// `/lists/{id}/interest-categories…`: categories and their interests, read and created.
fn groups_api(
    list: &mut FakeList,
    method: &str,
    rest: &[&str],
    query: &str,
    parsed: Option<Result<Value, serde_json::Error>>,
) -> Response {
    let (offset, count) =
        (number_param(query, "offset").unwrap_or(0), number_param(query, "count").unwrap_or(10).min(1000));
    match (method, rest) {
        ("GET", []) => json_response(
            StatusCode::OK,
            partial(list.groups.categories_page(&list.id, offset, count), query),
        ),
        ("GET", [category, "interests"]) => {
            match list.groups.interests_page(&list.id, category, offset, count) {
                Some(page) => json_response(StatusCode::OK, partial(page, query)),
                None => not_found(),
            }
        }
        ("POST", [category, "interests"]) => {
            let Some(Ok(body)) = parsed else { return json_parse_error() };
            let Some(name) = body.get("name").and_then(Value::as_str).filter(|n| !n.trim().is_empty()) else {
                return problem(StatusCode::BAD_REQUEST, "Invalid Resource", "The interest needs a name.");
            };
            let known = list.groups.categories.iter().any(|c| c.id == *category);
            match list.groups.add_interest(category, name.trim()) {
                Some(interest) => {
                    let order = list
                        .groups
                        .categories
                        .iter()
                        .find(|c| c.id == *category)
                        .map_or(0, |c| c.interests.len() - 1);
                    json_response(
                        StatusCode::OK,
                        super::groups::interest_json(&list.id, category, &interest, order),
                    )
                }
                None if known => problem(
                    StatusCode::BAD_REQUEST,
                    "Invalid Resource",
                    &format!("Cannot add \"{name}\" because it already exists on the list."),
                ),
                None => not_found(),
            }
        }
        _ => not_found(),
    }
}

/// The key an Authorization header presents: Basic's password, or a Bearer token.
fn basic_password(header: &str) -> Option<String> {
    if let Some(encoded) = header.strip_prefix("Basic ") {
        base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()
            .and_then(|raw| String::from_utf8(raw).ok())
            .and_then(|pair| pair.split_once(':').map(|(_, key)| key.to_string()))
    } else {
        header.strip_prefix("Bearer ").map(|t| t.trim().to_string())
    }
}

/// `GET /lists`: a page of the account's audiences (10 by default, at most 1000), in creation order.
fn lists_page(lists: &[FakeList], query: &str) -> Response {
    let count = number_param(query, "count").unwrap_or(10).min(1000);
    let offset = number_param(query, "offset").unwrap_or(0);
    let page: Vec<Value> = lists.iter().skip(offset).take(count).map(FakeList::info).collect();
    json_response(StatusCode::OK, partial(json!({"lists": page, "total_items": lists.len()}), query))
}

fn merge_fields_page(list: &FakeList, query: &str) -> Response {
    let count = number_param(query, "count").unwrap_or(10).min(1000);
    let offset = number_param(query, "offset").unwrap_or(0);
    let page: Vec<&super::audience::FakeMergeField> =
        list.merge_fields.iter().skip(offset).take(count).collect();
    json_response(
        StatusCode::OK,
        json!({"merge_fields": page, "list_id": list.id, "total_items": list.merge_fields.len()}),
    )
}

/// The answer a fault gives instead of doing the request.
fn fault_response(fault: &Fault, headers: &HeaderMap) -> Response {
    match fault {
        Fault::ResetBeforeRead => reset_mid_response(),
        Fault::Redirect { location, status } => Response::builder()
            .status(status.unwrap_or(302))
            .header("location", location.as_str())
            .body(Body::empty())
            .expect("a redirect response"),
        Fault::EmptyObject => (StatusCode::OK, [("content-type", "application/json; charset=utf-8")], "{}").into_response(),
        Fault::EchoKey => {
            let token = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
            let key = basic_password(token).unwrap_or_default();
            problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal Server Error",
                &format!("Request with key {key} (header: {token}) could not be completed."),
            )
        }
        Fault::TooManyRequests { body, retry_after_seconds } => {
            let mut response = if *body {
                problem(
                    StatusCode::TOO_MANY_REQUESTS,
                    "Too Many Requests",
                    "You have exceeded the limit of 10 simultaneous connections.",
                )
            } else {
                StatusCode::TOO_MANY_REQUESTS.into_response()
            };
            if let Some(seconds) = retry_after_seconds {
                response.headers_mut().insert("retry-after", (*seconds).into());
            }
            response
        }
        Fault::ForbiddenWithoutBody => StatusCode::FORBIDDEN.into_response(),
        Fault::InternalServerError => problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal Server Error",
            "An unexpected internal error has occurred. Please contact Support for more information.",
        ),
        Fault::BadGatewayHtml => (
            StatusCode::BAD_GATEWAY,
            [("content-type", "text/html")],
            "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>",
        )
            .into_response(),
        Fault::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE.into_response(),
        Fault::InvalidResource => problem_with(
            StatusCode::BAD_REQUEST,
            "Invalid Resource",
            "The resource submitted could not be validated. For field-specific details, see the 'errors' array.",
            json!([{"field": "members", "message": "Schema describes array, object found instead"}]),
        ),
        Fault::ResetMidResponse | Fault::Delay { .. } => {
            unreachable!("faults that carry out the request are answered by the API")
        }
    }
}

/// A 200 whose body breaks off after its first bytes: the client sees the connection fail.
fn reset_mid_response() -> Response {
    let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
        Ok(Bytes::from_static(b"{\"new_members\":[")),
        Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "connection reset by the fake")),
    ];
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json; charset=utf-8")
        .body(Body::from_stream(futures::stream::iter(chunks)))
        .expect("a static response builds")
}

#[derive(serde::Deserialize)]
struct FaultRequest {
    #[serde(default)]
    target: Target,
    faults: Vec<Fault>,
}

/// Views and controls for tests, the demo and the benchmark (no auth): members, the request log,
/// the fault program and the connection limit.
fn admin(shared: &Shared, method: &Method, rest: &str, body: &[u8]) -> Response {
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    match (method.as_str(), segments.as_slice()) {
        ("GET", ["lists", id, "members"]) => {
            let lists = shared.lists.lock().expect("audience lock");
            match lists.iter().find(|l| l.id == *id) {
                Some(list) => {
                    let mut members: Vec<_> = list.members.values().collect();
                    members.sort_by_key(|m| m.email_address.to_lowercase());
                    json_response(StatusCode::OK, json!(members))
                }
                None => not_found(),
            }
        }
        ("POST", ["faults"]) => match serde_json::from_slice::<FaultRequest>(body) {
            Ok(request) => {
                let mut program = shared.faults.lock().expect("fault lock");
                for fault in request.faults {
                    program.push(request.target, fault);
                }
                json_response(StatusCode::OK, json!({"remaining": program.remaining()}))
            }
            Err(e) => problem(StatusCode::BAD_REQUEST, "Invalid Resource", &e.to_string()),
        },
        ("PUT", ["connection-limit", limit]) => match limit.parse::<usize>() {
            Ok(limit) if limit > 0 => {
                shared.connection_limit.store(limit, Ordering::SeqCst);
                json_response(StatusCode::OK, json!({"connection_limit": limit}))
            }
            _ => problem(StatusCode::BAD_REQUEST, "Invalid Resource", "The limit must be a positive number."),
        },
        ("GET", ["stats"]) => json_response(
            StatusCode::OK,
            json!({
                "requests": shared.requests.lock().expect("request log lock").len(),
                "in_flight": shared.in_flight.load(Ordering::SeqCst),
                "peak_in_flight": shared.peak_in_flight.load(Ordering::SeqCst),
                "connection_limit": shared.connection_limit.load(Ordering::SeqCst),
            }),
        ),
        ("PUT", ["request-bodies", keep]) => {
            shared.keep_bodies.store(*keep == "keep", Ordering::SeqCst);
            json_response(StatusCode::OK, json!({"keep_request_bodies": *keep == "keep"}))
        }
        ("GET", ["requests"]) => {
            let requests = shared.requests.lock().expect("request log lock");
            json_response(StatusCode::OK, json!(*requests))
        }
        _ => not_found(),
    }
}

fn json_response(status: StatusCode, body: Value) -> Response {
    (status, [("content-type", "application/json; charset=utf-8")], body.to_string()).into_response()
}

fn problem(status: StatusCode, title: &str, detail: &str) -> Response {
    problem_with(status, title, detail, Value::Null)
}

fn problem_with(status: StatusCode, title: &str, detail: &str, errors: Value) -> Response {
    let mut body = json!({"type": "https://mailchimp.com/developer/marketing/docs/errors/", "title": title,
                          "status": status.as_u16(), "detail": detail, "instance": "00000000-0000-4000-8000-000000000000"});
    if !errors.is_null() {
        body["errors"] = errors;
    }
    (status, [("content-type", "application/problem+json; charset=utf-8")], body.to_string()).into_response()
}

fn not_found() -> Response {
    problem(StatusCode::NOT_FOUND, "Resource Not Found", "The requested resource could not be found.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_responses_keep_or_drop_dotted_fields_inside_arrays() {
        let answer = json!({"total_created": 1, "errors": [],
            "new_members": [{"email_address": "a@x.io", "status": "subscribed", "tags": [{"id": 1, "name": "t"}]}]});
        assert_eq!(
            partial(answer.clone(), "fields=total_created,new_members.email_address,new_members.tags.name"),
            json!({"total_created": 1, "new_members": [{"email_address": "a@x.io", "tags": [{"name": "t"}]}]})
        );
        assert_eq!(partial(answer, "exclude_fields=new_members%2Cerrors"), json!({"total_created": 1}));
    }

    #[test]
    fn audiences_are_served_in_pages_of_ten_by_default_and_at_most_a_thousand() {
        let lists: Vec<FakeList> =
            (0..12).map(|i| FakeList::new(&format!("l{i:02}"), &format!("List {i}"))).collect();
        let body = |query: &str| {
            let response = lists_page(&lists, query);
            assert_eq!(response.status(), StatusCode::OK);
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let bytes = runtime.block_on(axum::body::to_bytes(response.into_body(), usize::MAX)).unwrap();
            serde_json::from_slice::<Value>(&bytes).unwrap()
        };
        let ids = |page: &Value| -> Vec<String> {
            page["lists"].as_array().unwrap().iter().map(|l| l["id"].as_str().unwrap().to_string()).collect()
        };
        let first = body("");
        assert_eq!((ids(&first).len(), first["total_items"].as_u64()), (10, Some(12)));
        assert_eq!(ids(&body("count=5&offset=10")), ["l10", "l11"]);
        assert_eq!(ids(&body("count=5000")).len(), 12);
        assert_eq!(body("fields=lists.id,total_items")["lists"][0], json!({"id": "l00"}));
    }
}
