//! The `outbound` import: requests a twin queues, checked against the
//! destination policy and the byte bounds, sent only once the call commits.

use crate::bindings::outbound;

use super::InstanceState;

impl outbound::Host for InstanceState {
    fn enqueue(
        &mut self,
        request: outbound::OutboundRequest,
    ) -> wasmtime::Result<Result<String, outbound::OutboundError>> {
        if self.outbox.len() >= crate::outbound::MAX_PER_CALL {
            return Ok(Err(outbound::OutboundError::TooMany(format!(
                "one request may queue at most {} outbound requests",
                crate::outbound::MAX_PER_CALL
            ))));
        }
        use crate::outbound::{MAX_BODY_BYTES, MAX_BYTES_PER_CALL};
        if request.body.len() > MAX_BODY_BYTES {
            return Ok(Err(outbound::OutboundError::Invalid(format!(
                "an outbound body is limited to {MAX_BODY_BYTES} bytes; got {}",
                request.body.len()
            ))));
        }
        let bytes = request.url.len()
            + request.body.len()
            + request
                .headers
                .iter()
                .map(|(n, v)| n.len() + v.len())
                .sum::<usize>();
        if self.outbox_bytes + bytes > MAX_BYTES_PER_CALL {
            return Ok(Err(outbound::OutboundError::TooMany(format!(
                "one request may queue at most {MAX_BYTES_PER_CALL} bytes of outbound requests"
            ))));
        }
        let method = request.method.to_ascii_uppercase();
        if let Err(refusal) = self.policy.check(&method, &request.url, &request.headers) {
            return Ok(Err(match refusal {
                crate::outbound::Refusal::Denied(why) => outbound::OutboundError::Denied(why),
                crate::outbound::Refusal::Invalid(why) => outbound::OutboundError::Invalid(why),
            }));
        }
        let queued_body: usize = self.outbox.iter().map(|(_, r)| r.body.len()).sum();
        if let Err(crate::outbound::Backlog(why)) =
            self.outbound.has_room(queued_body, request.body.len())
        {
            return Ok(Err(outbound::OutboundError::TooMany(why)));
        }
        self.outbox_bytes += bytes;
        let id = self.outbound.next_id();
        self.outbox.push((
            id.clone(),
            crate::outbound::OutboundRequest {
                method,
                url: request.url,
                headers: request.headers,
                body: request.body,
            },
        ));
        Ok(Ok(id))
    }
}
