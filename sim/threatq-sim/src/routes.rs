//! The HTTP face of the simulator: ThreatQ's endpoints, plus one middleware
//! that records each request, applies the faults and checks the bearer
//! token, in that order, so even refused requests are on the record.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde_json::{Value, json};

use crate::catalog::{EVENT_TYPES, INDICATOR_STATUSES, INDICATOR_TYPES};
use crate::store::{With, WriteError};
use crate::{RecordedRequest, Shared, lock};

type SharedState = State<Arc<Shared>>;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/api/token", post(token))
        .route("/api/indicator/types", get(|| names(INDICATOR_TYPES)))
        .route("/api/indicator/statuses", get(|| names(INDICATOR_STATUSES)))
        .route("/api/event/types", get(|| names(EVENT_TYPES)))
        .route("/api/connectors", get(connectors))
        .route("/api/configuration/proxy", get(proxy))
        .route("/api/{collection}/consume", post(consume))
        .route("/api/{collection}", get(list))
        .route("/api/{collection}/{id}", get(get_one).put(update_object))
        .route("/api/{collection}/{id}/attributes", post(add_attribute))
        .route(
            "/api/{collection}/{id}/attributes/{attribute_id}",
            put(set_attribute).delete(delete_attribute),
        )
        .fallback(|| async { not_found("No such endpoint.") })
        .layer(axum::extract::DefaultBodyLimit::disable())
        .layer(middleware::from_fn_with_state(shared.clone(), gatekeeper))
        .with_state(shared)
}

fn json_response(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

fn not_found(message: &str) -> Response {
    json_response(StatusCode::NOT_FOUND, json!({ "errors": [message] }))
}

async fn gatekeeper(State(shared): SharedState, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(body) => body,
        Err(_) => Bytes::new(),
    };
    let bearer = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::to_owned);
    let path = parts.uri.path().to_owned();
    let record = RecordedRequest {
        method: parts.method.to_string(),
        path: path.clone(),
        query: parts.uri.query().map(str::to_owned),
        body_size: body.len(),
        body: body.clone(),
        status: 0,
        had_bearer: bearer.is_some(),
        bearer: bearer.clone(),
    };

    let (delay, failure) = {
        let mut faults = lock(&shared.faults);
        let failure = (!faults.failures.is_empty()).then(|| faults.failures.remove(0));
        let lookup = parts.method == axum::http::Method::GET
            && parts
                .uri
                .query()
                .is_some_and(|query| query.split('&').any(|pair| pair.starts_with("value=")));
        let delay = if path.ends_with("/consume") {
            faults.consume_delay.or(faults.delay)
        } else if lookup {
            faults.lookup_delay.or(faults.delay)
        } else {
            faults.delay
        };
        (delay, failure)
    };
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }

    let blocked = path
        .ends_with("/consume")
        .then(|| lock(&shared.faults).body_refusal(&body))
        .flatten();

    let response = if let Some(status) = failure {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        json_response(
            status,
            json!({ "errors": [format!("Simulated failure: {status}")] }),
        )
    } else if let Some(status) = blocked {
        waf_page(status)
    } else if path != "/api/token"
        && !bearer.is_some_and(|token| lock(&shared.tokens).is_valid(&token))
    {
        json_response(
            StatusCode::UNAUTHORIZED,
            json!({ "error": "invalid_token", "message": "Unauthenticated." }),
        )
    } else {
        next.run(Request::from_parts(parts, Body::from(body))).await
    };

    lock(&shared.requests).push(RecordedRequest {
        status: response.status().as_u16(),
        ..record
    });
    response
}

/// What a web application firewall in front of ThreatQ answers when it
/// blocks a request: its own HTML page, not ThreatQ's JSON (F5 ASM's text).
fn waf_page(status: u16) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN);
    let page = "<html><head><title>Request Rejected</title></head><body>\
        The requested URL was rejected. Please consult with your administrator.<br><br>\
        Your support ID is: 7203615932941447818</body></html>";
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        page,
    )
        .into_response()
}

async fn token(
    State(shared): SharedState,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut params = query;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    if content_type.starts_with("application/x-www-form-urlencoded") {
        params.extend(url::form_urlencoded::parse(&body).into_owned());
    } else if !body.is_empty() {
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(fields)) => {
                for (key, value) in fields {
                    let text = match value {
                        Value::String(text) => text,
                        other => other.to_string(),
                    };
                    params.insert(key, text);
                }
            }
            _ => {
                return json_response(
                    StatusCode::BAD_REQUEST,
                    json!({ "error": "invalid_request", "message": "The request body is not valid JSON." }),
                );
            }
        }
    }
    let granted = lock(&shared.tokens).grant(
        &shared.credentials,
        &params,
        shared.token_ttl,
        shared.access_token.as_deref(),
    );
    match granted {
        Ok(body) => json_response(StatusCode::OK, body),
        Err(refused) => json_response(StatusCode::BAD_REQUEST, refused.body()),
    }
}

async fn consume(
    State(shared): SharedState,
    Path(collection): Path<String>,
    body: Bytes,
) -> Response {
    let Ok(items) = serde_json::from_slice::<Value>(&body) else {
        return json_response(
            StatusCode::BAD_REQUEST,
            json!({ "errors": ["The request body is not valid JSON."] }),
        );
    };
    let rejected_values = {
        let mut faults = lock(&shared.faults);
        if let Some((status, reason)) = faults.refused_collections.get(&collection) {
            let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_REQUEST);
            return json_response(status, json!({ "errors": [reason] }));
        }
        if faults.errors_in_success > 0 {
            faults.errors_in_success -= 1;
            return json_response(
                StatusCode::OK,
                json!({ "data": [], "errors": ["There was an error retrieving records."] }),
            );
        }
        faults.rejected_values.clone()
    };
    let outcome = lock(&shared.store).consume(&collection, &items, &rejected_values);
    match outcome {
        Ok(rows) => {
            let total = rows.len();
            json_response(StatusCode::CREATED, json!({ "data": rows, "total": total }))
        }
        Err(errors) if errors.contains_key("collection") => {
            not_found(&format!("The collection {collection} does not exist."))
        }
        Err(errors) => json_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({ "message": "The given data was invalid.", "errors": errors }),
        ),
    }
}

async fn list(
    State(shared): SharedState,
    Path(collection): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let filter = ["value", "name", "title", "id", "happened_at"]
        .into_iter()
        .find_map(|key| query.get(key).map(|wanted| (key, wanted.as_str())));
    let with = With::parse(query.get("with").map(String::as_str));
    match lock(&shared.store).list(&collection, filter, with) {
        Some(rows) => {
            let total = rows.len();
            json_response(StatusCode::OK, json!({ "total": total, "data": rows }))
        }
        None => not_found(&format!("The collection {collection} does not exist.")),
    }
}

async fn get_one(
    State(shared): SharedState,
    Path((collection, id)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let with = With::parse(query.get("with").map(String::as_str));
    let found = id
        .parse()
        .ok()
        .and_then(|id| lock(&shared.store).get(&collection, id, with));
    match found {
        Some(object) => json_response(StatusCode::OK, json!({ "total": 1, "data": object })),
        None => not_found(&format!("No {collection} object with id {id}.")),
    }
}

async fn update_object(
    State(shared): SharedState,
    Path((collection, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let Some(id) = id.parse().ok() else {
        return no_object(&collection, &id);
    };
    let Some(body) = json_body(&body) else {
        return not_json();
    };
    let outcome = lock(&shared.store).update_object(&collection, id, &body);
    match outcome {
        Ok(object) => json_response(StatusCode::OK, json!({ "data": object })),
        Err(error) => write_refusal(error, &collection, &id.to_string(), None),
    }
}

async fn add_attribute(
    State(shared): SharedState,
    Path((collection, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let Some(id) = id.parse().ok() else {
        return no_object(&collection, &id);
    };
    let Some(body) = json_body(&body) else {
        return not_json();
    };
    let outcome = lock(&shared.store).add_attribute(&collection, id, &body);
    match outcome {
        // A list, as threatqsdk reads it (`res["data"][0]["attribute_id"]`).
        Ok(attribute) => json_response(
            StatusCode::CREATED,
            json!({ "total": 1, "data": [attribute] }),
        ),
        Err(error) => write_refusal(error, &collection, &id.to_string(), None),
    }
}

async fn set_attribute(
    State(shared): SharedState,
    Path((collection, id, attribute_id)): Path<(String, String, String)>,
    body: Bytes,
) -> Response {
    let (Some(id), Some(attribute_id)) = (id.parse().ok(), attribute_id.parse().ok()) else {
        return no_object(&collection, &id);
    };
    let Some(body) = json_body(&body) else {
        return not_json();
    };
    let outcome = lock(&shared.store).set_attribute(&collection, id, attribute_id, &body);
    match outcome {
        Ok(attribute) => json_response(StatusCode::OK, json!({ "data": attribute })),
        Err(error) => write_refusal(error, &collection, &id.to_string(), Some(attribute_id)),
    }
}

async fn delete_attribute(
    State(shared): SharedState,
    Path((collection, id, attribute_id)): Path<(String, String, String)>,
) -> Response {
    let (Some(id), Some(attribute_id)) = (id.parse().ok(), attribute_id.parse().ok()) else {
        return no_object(&collection, &id);
    };
    let outcome = lock(&shared.store).delete_attribute(&collection, id, attribute_id);
    match outcome {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(error) => write_refusal(error, &collection, &id.to_string(), Some(attribute_id)),
    }
}

/// A request body as JSON; `None` when it is empty or not JSON.
fn json_body(body: &[u8]) -> Option<Value> {
    serde_json::from_slice(body).ok()
}

fn not_json() -> Response {
    json_response(
        StatusCode::BAD_REQUEST,
        json!({ "errors": ["The request body is not valid JSON."] }),
    )
}

fn no_object(collection: &str, id: &str) -> Response {
    not_found(&format!("No {collection} object with id {id}."))
}

fn write_refusal(
    error: WriteError,
    collection: &str,
    id: &str,
    attribute_id: Option<u64>,
) -> Response {
    match error {
        WriteError::NoCollection => {
            not_found(&format!("The collection {collection} does not exist."))
        }
        WriteError::NoObject => no_object(collection, id),
        WriteError::NoAttribute => not_found(&format!(
            "No attribute value with id {} on {collection} object {id}.",
            attribute_id.unwrap_or_default()
        )),
        // Laravel's validation shape, as ThreatQ's update endpoints answer
        // it (docs/threatq-api.md, "Errors").
        WriteError::Invalid(errors) => json_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({ "data": { "errors": errors } }),
        ),
    }
}

async fn names(names: &'static [&'static str]) -> Response {
    let data: Vec<Value> = names
        .iter()
        .enumerate()
        .map(|(position, name)| json!({ "id": position + 1, "name": name }))
        .collect();
    json_response(StatusCode::OK, json!({ "total": data.len(), "data": data }))
}

async fn connectors(
    State(shared): SharedState,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if lock(&shared.faults).connectors_missing {
        return not_found("No such endpoint.");
    }
    let data: Vec<Value> = lock(&shared.connector)
        .iter()
        .filter(|entry| match query.get("name") {
            Some(wanted) => entry.get("name").and_then(Value::as_str) == Some(wanted.as_str()),
            None => true,
        })
        .cloned()
        .collect();
    json_response(StatusCode::OK, json!({ "total": data.len(), "data": data }))
}

async fn proxy(State(shared): SharedState) -> Response {
    let data = match lock(&shared.proxy).as_deref() {
        Some(proxy) => json!({ "proxy": proxy }),
        None => json!({}),
    };
    json_response(StatusCode::OK, json!({ "data": data }))
}
