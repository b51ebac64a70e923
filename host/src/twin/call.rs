//! Calling a twin: one request at a time through its bounded queue, on
//! its warm instance (or a fresh one), under its deadline and memory
//! limit; the writes commit, and deliveries start, only once it answers.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use wasmtime::{Store, UpdateDeadline};

use crate::bindings::{TwinPre, types};
use crate::capability::InstanceState;
use crate::clock::TwinClock;
use crate::engine::EPOCH_TICK;
use crate::limits::Limits;
use crate::metrics::Metrics;
use crate::outbound::{Outbound, Policy};
use crate::settings::Settings;
use crate::state::{StorageError, TwinState};

use super::{Runtime, Twin, Warm, one_line};

/// Requests one instance serves before it is replaced by a fresh one: keeps
/// a slow leak or fragmentation in a guest's heap from building up forever.
const REQUESTS_PER_INSTANCE: u32 = 10_000;

/// One place in a twin's bounded queue, given back on drop.
struct QueueSlot<'a>(&'a AtomicUsize);

impl<'a> QueueSlot<'a> {
    fn take(queued: &'a AtomicUsize, max: usize) -> Option<Self> {
        queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| Self(queued))
    }
}

impl Drop for QueueSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// How a call to a twin ended, when it did not return a response.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("twin '{twin}' trapped: {message}")]
    Trap { twin: String, message: String },
    #[error("twin '{twin}' did not answer within {timeout:?}")]
    Deadline { twin: String, timeout: Duration },
    #[error("twin '{twin}' could not be instantiated: {message}")]
    Instantiate { twin: String, message: String },
    #[error("twin '{twin}' could not use its state: {message}")]
    Storage { twin: String, message: String },
    #[error(
        "twin '{twin}' tried to grow its memory to {wanted} bytes, past its limit of {limit} bytes"
    )]
    Memory {
        twin: String,
        wanted: usize,
        limit: usize,
    },
    #[error("twin '{twin}' has {queued} requests waiting already; try again shortly")]
    Busy { twin: String, queued: usize },
    #[error("twin '{twin}' needs a license: {reason}")]
    Unlicensed {
        twin: String,
        code: &'static str,
        reason: String,
    },
}

/// The error the epoch callback raises to stop a twin at its deadline.
#[derive(Debug, thiserror::Error)]
#[error("request deadline exceeded")]
struct DeadlineExceeded;

impl Twin {
    /// Runs one request through the twin; its writes commit only if it
    /// returns a response.
    pub async fn call(&self, request: &types::Request) -> Result<types::Response, CallError> {
        // Checked per request against the identity the host loaded the twin
        // under (never anything from the request): an expiry takes effect at exactly `exp`, and a request that
        // got past here finishes even if the license lapses meanwhile.
        let now = crate::license::unix_now();
        let claims = if self.info.license_required {
            let claims = self
                .licensing
                .check(&self.info.identity, now)
                .map_err(|refusal| CallError::Unlicensed {
                    twin: self.name.to_string(),
                    code: refusal.code(),
                    reason: refusal.to_string(),
                })?;
            Some(claims)
        } else {
            self.licensing.covering(&self.info.identity, now)
        };
        let _waiting =
            QueueSlot::take(&self.queued, self.limits.max_queued_per_twin).ok_or_else(|| {
                CallError::Busy {
                    twin: self.name.to_string(),
                    queued: self.limits.max_queued_per_twin,
                }
            })?;
        let _turn = self.gate.lock().await;
        drop(_waiting);
        let license = claims.map(|c| crate::bindings::license::Claims {
            issuer: c.iss,
            subject: c.sub,
            audience: c.aud.names(),
            tier: c.tier.as_str().to_owned(),
            issued_at: c.iat,
            not_before: c.nbf,
            expires_at: c.exp,
            token_id: c.jti,
        });
        let mut warm = match self.runtime.instances().take(self.key) {
            Some(warm) => warm,
            None => self.sandbox().instantiate().await?,
        };
        warm.store
            .data_mut()
            .begin_request(self.state.begin(), self.settings.snapshot(), license);
        warm.store.set_epoch_deadline(1);
        let result = warm
            .instance
            .wondertwin_twin_handler()
            .call_handle(&mut warm.store, request)
            .await;
        // Dropping `warm` after a trap drops the instance and its
        // transaction: nothing commits, and nothing of it serves again.
        let response = result.map_err(|err| self.sandbox().classify(err, &warm.store))?;
        // The response leaves only once its writes are committed (on disk,
        // for durable state).
        let data = warm.store.data_mut();
        self.metrics.saw_memory(data.limiter.peak_memory as u64);
        let outbox = std::mem::take(&mut data.outbox);
        data.txn.commit().map_err(|err| CallError::Storage {
            twin: self.name.to_string(),
            message: err.to_string(),
        })?;
        // Only now, with the writes durable, do webhooks go out.
        self.outbound.send(outbox);
        warm.served += 1;
        if self.keeps(&warm) {
            self.runtime.instances().park(self.key, warm);
        }
        Ok(response)
    }

    /// Whether an instance that just answered may serve the next request.
    fn keeps(&self, warm: &Warm) -> bool {
        let data = warm.store.data();
        warm.served < REQUESTS_PER_INSTANCE
            // A heap past half the limit is more likely to hit it next time.
            && data.limiter.peak_memory <= self.limits.max_memory_bytes / 2
            && !data.wrote_stderr()
    }
}

/// What making an instance needs, borrowed: from a serving twin, or from a
/// load in progress, which describes the component before the twin exists.
pub(super) struct Sandbox<'a> {
    pub name: &'a Arc<str>,
    pub pre: &'a TwinPre<InstanceState>,
    pub runtime: &'a Runtime,
    pub limits: &'a Limits,
    pub state: &'a TwinState,
    pub clock: &'a TwinClock,
    pub outbound: &'a Arc<Outbound>,
    pub policy: &'a Arc<Policy>,
    pub metrics: &'a Arc<Metrics>,
    pub settings: &'a Settings,
}

impl Sandbox<'_> {
    /// Instantiates the component and asks it to describe itself.
    pub async fn describe(&self) -> Result<crate::bindings::Info, CallError> {
        let mut warm = self.instantiate().await?;
        let result = warm
            .instance
            .wondertwin_twin_describe()
            .call_describe(&mut warm.store)
            .await;
        result.map_err(|err| self.classify(err, &warm.store))
    }

    fn new_store(&self) -> Store<InstanceState> {
        let data = InstanceState::new(
            self.name.clone(),
            self.state.begin(),
            self.clock.clone(),
            self.limits,
            crate::capability::Shared {
                outbound: self.outbound.clone(),
                policy: self.policy.clone(),
                metrics: self.metrics.clone(),
            },
            self.settings.snapshot(),
        );
        let mut store = Store::new(self.runtime.engine(), data);
        store.limiter(|data| &mut data.limiter);
        let max_ticks = deadline_ticks(self.limits.request_timeout);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |mut ctx| {
            let data = ctx.data_mut();
            data.ticks += 1;
            if data.ticks >= max_ticks {
                Err(wasmtime::Error::new(DeadlineExceeded))
            } else {
                // Hand the worker thread back to tokio once per tick so one
                // busy twin cannot starve the others sharing that thread.
                Ok(UpdateDeadline::Yield(1))
            }
        });
        store
    }

    /// A fresh instance in a new store, in a pooling slot it waits for.
    pub async fn instantiate(&self) -> Result<Warm, CallError> {
        let slot = self.runtime.instances().slot().await;
        let mut store = self.new_store();
        let instance = self
            .pre
            .instantiate_async(&mut store)
            .await
            .map_err(|err| CallError::Instantiate {
                twin: self.name.to_string(),
                message: one_line(&err),
            })?;
        Ok(Warm {
            store,
            instance,
            _slot: slot,
            served: 0,
        })
    }

    pub fn classify(&self, err: wasmtime::Error, store: &Store<InstanceState>) -> CallError {
        let twin = self.name.to_string();
        if let Some(storage) = err.downcast_ref::<StorageError>() {
            return CallError::Storage {
                twin,
                message: storage.to_string(),
            };
        }
        if let Some(wanted) = store.data().limiter.denied_memory_growth {
            return CallError::Memory {
                twin,
                wanted,
                limit: self.limits.max_memory_bytes,
            };
        }
        if err.downcast_ref::<DeadlineExceeded>().is_some() {
            return CallError::Deadline {
                twin,
                timeout: self.limits.request_timeout,
            };
        }
        let mut message = match err.downcast_ref::<wasmtime::Trap>() {
            Some(trap) => trap.to_string(),
            None => one_line(&err),
        };
        let stderr = store.data().stderr.contents();
        let stderr = String::from_utf8_lossy(&stderr);
        let stderr = stderr.trim();
        if !stderr.is_empty() {
            message = format!("{message}; stderr: {stderr}");
        }
        // The message goes into the 500 body and the operator's log: a
        // twin's panic text must not drive the terminal.
        let message = crate::logs::printable(&message).into_owned();
        CallError::Trap { twin, message }
    }
}

fn deadline_ticks(timeout: Duration) -> u64 {
    let ticks = timeout.as_millis() / EPOCH_TICK.as_millis().max(1);
    u64::try_from(ticks).unwrap_or(u64::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadline_is_at_least_one_tick() {
        assert_eq!(deadline_ticks(Duration::from_millis(1)), 1);
        assert_eq!(deadline_ticks(Duration::from_secs(1)), 100);
    }
}
