//! Reading a request body within the host's bounds: its size, the
//! host-wide body budget, and a deadline for clients that trickle.

use super::*;

/// Reads a request body of at most `max` bytes, taking its bytes from the
/// host-wide `budget` as they arrive (all at once when `Content-Length`
/// says how many): many large bodies at once get 503s, not the host's
/// memory.
pub(super) async fn read_body(
    body: Incoming,
    max: usize,
    budget: &Arc<BodyBudget>,
) -> Result<(Bytes, Option<BudgetPermit>), http::Response<Bytes>> {
    let mut body = Limited::new(body, max);
    let mut held: Option<BudgetPermit> = None;
    if let Some(length) = body.size_hint().exact() {
        let length = usize::try_from(length).unwrap_or(usize::MAX);
        if length == 0 {
            return Ok((Bytes::new(), None));
        }
        if length <= max {
            match budget.take(length) {
                Some(permit) => held = Some(permit),
                None => return Err(refuse_after_draining(body, budget.max_bytes()).await),
            }
        }
    }
    let mut chunks: Vec<Bytes> = Vec::new();
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|err| body_error(&*err, max))?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        total += data.len();
        let covered = held.as_ref().map_or(0, BudgetPermit::bytes);
        if total > covered {
            let Some(more) = budget.take(total - covered) else {
                drop(chunks);
                drop(held);
                return Err(refuse_after_draining(body, budget.max_bytes()).await);
            };
            match &mut held {
                Some(permit) => permit.merge(more),
                None => held = Some(more),
            }
        }
        chunks.push(data);
    }
    let bytes = match chunks.len() {
        0 => Bytes::new(),
        1 => chunks.pop().unwrap_or_default(),
        _ => {
            let mut joined = Vec::with_capacity(total);
            for chunk in &chunks {
                joined.extend_from_slice(chunk);
            }
            Bytes::from(joined)
        }
    };
    Ok((bytes, held))
}

/// The budget's refusal, sent once the rest of the body is read and
/// dropped (within `max`): a response sent while the client still writes
/// would be lost to the reset that closing an unread connection causes.
async fn refuse_after_draining(
    mut body: Limited<Incoming>,
    budget_bytes: usize,
) -> http::Response<Bytes> {
    while let Some(Ok(_)) = body.frame().await {}
    let mut response = error_response(
        StatusCode::SERVICE_UNAVAILABLE,
        "host_busy",
        &format!(
            "the host already holds {budget_bytes} bytes of request bodies (--max-buffered-bodies); try again shortly"
        ),
        None,
    );
    response.headers_mut().insert(
        http::header::RETRY_AFTER,
        http::HeaderValue::from_static("1"),
    );
    response
}

fn body_error(
    err: &(dyn std::error::Error + Send + Sync + 'static),
    max: usize,
) -> http::Response<Bytes> {
    if err
        .downcast_ref::<http_body_util::LengthLimitError>()
        .is_some()
    {
        return error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request_too_large",
            &format!("request bodies are limited to {max} bytes"),
            None,
        );
    }
    error_response(
        StatusCode::BAD_REQUEST,
        "bad_request_body",
        &format!("could not read the request body: {err}"),
        None,
    )
}
