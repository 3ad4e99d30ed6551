//! `GET /v1/calls`, `GET /v1/calls/{call_id}`, `GET /v1/me`.

use axum::Json;
use axum::extract::{Path, State};
use ivrpay_store::{CallId, CallRecord, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::ApiState;
use crate::auth::{Principal, Scope};
use crate::error::{ApiError, Problem};
use crate::input::ApiQuery;

/// A call through ivrpay.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct Call {
    /// `call_…`: the `X-Ivrpay-Call-Id` the contact centre sees on leg B.
    pub(crate) id: String,
    /// `active` until it ends.
    #[schema(example = "active")]
    pub(crate) state: CallState,
    /// The agent handling it, once known.
    pub(crate) agent: Option<String>,
    /// The SIP profile that routed it.
    pub(crate) profile: String,
    /// The caller's number as the B2BUA saw it.
    pub(crate) caller: Option<String>,
    /// The number called.
    pub(crate) called: Option<String>,
    /// RFC 3339.
    pub(crate) started_at: String,
    pub(crate) answered_at: Option<String>,
    pub(crate) ended_at: Option<String>,
    /// Why it ended (`customer_hangup`, `agent_hangup`, `restart`, …).
    pub(crate) end_reason: Option<String>,
    /// The payment session open (or last opened) on the call while it runs (`sess_…`).
    pub(crate) payment_id: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(crate) enum CallState {
    Active,
    Ended,
}

fn rfc3339(ms: i64) -> String {
    Timestamp::from_unix_ms(ms).to_string()
}

pub(crate) fn call_view(state: &ApiState, record: CallRecord) -> Call {
    let payment_id = if record.ended_at_ms.is_none() {
        state.service().session_of_call(&record.id).map(|s| s.as_str().to_owned())
    } else {
        None
    };
    Call {
        id: record.id.as_str().to_owned(),
        state: if record.ended_at_ms.is_some() { CallState::Ended } else { CallState::Active },
        agent: record.agent,
        profile: record.profile,
        caller: record.caller,
        called: record.called,
        started_at: record.started_at.to_string(),
        answered_at: record.answered_at_ms.map(rfc3339),
        ended_at: record.ended_at_ms.map(rfc3339),
        end_reason: record.end_reason,
        payment_id,
    }
}

/// A page of calls.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CallPage {
    pub(crate) data: Vec<Call>,
    /// The cursor of the next page (`cursor=`), or null on the last page.
    pub(crate) next: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct CallsQuery {
    /// `active` (default) or `all`.
    state: Option<String>,
    /// Only this agent's calls. An agent key always sees its own (another agent is a 403).
    agent: Option<String>,
    /// The `next` of the previous page.
    cursor: Option<String>,
    /// 1 to 100 (default 50).
    limit: Option<u32>,
}

/// Calls, newest first.
#[utoipa::path(
    get, path = "/v1/calls", tag = "calls",
    params(CallsQuery),
    responses(
        (status = 200, description = "A page of calls", body = CallPage),
        (status = 401, description = "Missing or invalid key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Another agent's calls", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad query", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn list_calls(
    State(state): State<ApiState>,
    who: Principal,
    ApiQuery(query): ApiQuery<CallsQuery>,
) -> Result<Json<CallPage>, ApiError> {
    let active = match query.state.as_deref() {
        None | Some("active") => true,
        Some("all") => false,
        Some(_) => return Err(ApiError::invalid("state", "active or all")),
    };
    let agent = match (&who.scope, query.agent) {
        (Scope::Admin, agent) => agent,
        (Scope::Agent(own), None) => Some(own.clone()),
        (Scope::Agent(own), Some(asked)) if &asked == own => Some(asked),
        (Scope::Agent(_), Some(_)) => {
            return Err(ApiError::forbidden("an agent key sees only its own agent's calls"));
        }
    };
    let limit = query.limit.unwrap_or(50);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::invalid("limit", "between 1 and 100"));
    }
    let cursor = match query.cursor {
        Some(c) => Some(
            CallId::parse(&c)
                .map_err(|_| ApiError::invalid("cursor", "not a cursor from this API"))?,
        ),
        None => None,
    };
    let records = state
        .store()
        .calls(state.tenant(), active, agent.as_deref(), cursor.as_ref(), limit)
        .await?;
    let next = (records.len() == limit as usize)
        .then(|| records.last().map(|c| c.id.as_str().to_owned()))
        .flatten();
    let data = records.into_iter().map(|r| call_view(&state, r)).collect();
    Ok(Json(CallPage { data, next }))
}

/// A call the caller may see, or 404.
pub(crate) async fn visible_call(
    state: &ApiState,
    who: &Principal,
    id: &str,
) -> Result<CallRecord, ApiError> {
    let id = CallId::parse(id).map_err(|_| ApiError::not_found("call"))?;
    let record = state.service().call(&id).await?;
    if !who.may_see(&record) {
        return Err(ApiError::not_found("call"));
    }
    Ok(record)
}

/// One call.
#[utoipa::path(
    get, path = "/v1/calls/{call_id}", tag = "calls",
    params(("call_id" = String, Path, description = "`call_…`, the X-Ivrpay-Call-Id")),
    responses(
        (status = 200, description = "The call", body = Call),
        (status = 401, description = "Missing or invalid key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such call (or another agent's)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn get_call(
    State(state): State<ApiState>,
    who: Principal,
    Path(call_id): Path<String>,
) -> Result<Json<Call>, ApiError> {
    let record = visible_call(&state, &who, &call_id).await?;
    Ok(Json(call_view(&state, record)))
}

/// The key a request was made with.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Me {
    /// `key_…`.
    key_id: String,
    /// `admin` or `agent`.
    scope: String,
    /// The agent an agent key is bound to.
    agent: Option<String>,
}

/// Who the key belongs to (the desktop's sign-in check).
#[utoipa::path(
    get, path = "/v1/me", tag = "keys",
    responses(
        (status = 200, description = "The key's scope", body = Me),
        (status = 401, description = "Missing or invalid key", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn me(who: Principal) -> Json<Me> {
    Json(Me {
        key_id: who.key_id.as_str().to_owned(),
        scope: who.scope.name().to_owned(),
        agent: who.agent().map(str::to_owned),
    })
}
