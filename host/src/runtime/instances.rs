//! Instance slots, and the warm instances parked in them between requests.
//!
//! Every live instance holds one of `--max-instances` slots: a semaphore
//! permit kept beside its store and dropped after it. After
//! a request a twin's instance is parked here instead of dropped, and the
//! twin's next request takes it back: no instantiation and no guest start-up
//! on the hot path (docs/decisions.md §15). At most `capacity` instances are
//! parked, and the least recently parked goes first. A request that finds
//! every slot taken evicts a parked instance; while any request waits for a
//! slot, finished instances are dropped rather than parked, so parked
//! instances never starve a request that needs a slot.
//!
//! Generic over what is parked, so the policy is tested without wasmtime.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Which twin an instance belongs to: unique per loaded twin (a reload gets
/// a new one, so its predecessor's instance is never handed to it).
pub type TwinKey = u64;

pub struct Instances<W> {
    slots: Arc<Semaphore>,
    capacity: usize,
    parked: Mutex<Parked<W>>,
}

struct Parked<W> {
    /// Bumped on every park; an entry's tick says how recently it was used.
    tick: u64,
    by_twin: HashMap<TwinKey, (u64, W)>,
    /// Requests waiting for a slot right now.
    waiting: usize,
}

impl<W> Parked<W> {
    fn evict_least_recent(&mut self) -> Option<W> {
        let key = self
            .by_twin
            .iter()
            .min_by_key(|(_, (tick, _))| *tick)
            .map(|(key, _)| *key)?;
        self.by_twin.remove(&key).map(|(_, warm)| warm)
    }
}

impl<W> std::fmt::Debug for Instances<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instances")
            .field("free_slots", &self.slots.available_permits())
            .field("capacity", &self.capacity)
            .field("parked", &self.parked())
            .finish()
    }
}

impl<W> Instances<W> {
    /// `slots` instances may be alive at once; at most `capacity` of them
    /// parked (0 turns parking off: a fresh instance for every request).
    pub fn new(slots: usize, capacity: usize) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(slots)),
            capacity: capacity.min(slots),
            parked: Mutex::new(Parked {
                tick: 0,
                by_twin: HashMap::new(),
                waiting: 0,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Parked<W>> {
        // Nothing in here can be left half-updated by a panic.
        self.parked.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether parking is on at all.
    pub fn parks(&self) -> bool {
        self.capacity > 0
    }

    /// The twin's parked instance, if it has one.
    pub fn take(&self, twin: TwinKey) -> Option<W> {
        if !self.parks() {
            return None;
        }
        self.lock().by_twin.remove(&twin).map(|(_, warm)| warm)
    }

    /// Parks `warm` as the twin's instance for its next request, unless a
    /// request is waiting for a slot (then `warm` is dropped and its slot
    /// goes to that request). Evicts the least recently used instance when
    /// more than `capacity` would be parked.
    pub fn park(&self, twin: TwinKey, warm: W) {
        if !self.parks() {
            return;
        }
        let dropped = {
            let mut parked = self.lock();
            if parked.waiting > 0 {
                Some(warm)
            } else {
                parked.tick += 1;
                let tick = parked.tick;
                let replaced = parked.by_twin.insert(twin, (tick, warm)).map(|(_, w)| w);
                if parked.by_twin.len() > self.capacity {
                    parked.evict_least_recent()
                } else {
                    replaced
                }
            }
        };
        // Dropping an instance unmaps or zeroes its memory: not under the lock.
        drop(dropped);
    }

    /// Drops the twin's parked instance: after a reset, a state import, a
    /// reload, or when the twin goes away.
    pub fn discard(&self, twin: TwinKey) {
        let dropped = self.lock().by_twin.remove(&twin);
        drop(dropped);
    }

    /// How many instances are parked.
    pub fn parked(&self) -> usize {
        self.lock().by_twin.len()
    }

    /// A slot for a new instance: a free one, else one a parked instance
    /// gives up, else the first one a finishing request gives back. `None`
    /// only if the semaphore was closed, which nothing does.
    pub async fn slot(&self) -> Option<OwnedSemaphorePermit> {
        loop {
            if let Ok(permit) = self.slots.clone().try_acquire_owned() {
                return Some(permit);
            }
            let evicted = {
                let mut parked = self.lock();
                let evicted = parked.evict_least_recent();
                if evicted.is_none() {
                    // Counted under the same lock `park` checks, so no
                    // instance can be parked between this look and the wait.
                    parked.waiting += 1;
                }
                evicted
            };
            match evicted {
                Some(warm) => drop(warm),
                None => {
                    let _waiting = Waiting(self);
                    return self.slots.clone().acquire_owned().await.ok();
                }
            }
        }
    }
}

/// One request counted in `waiting`, uncounted on drop (also when the
/// request is cancelled while it waits).
struct Waiting<'a, W>(&'a Instances<W>);

impl<W> Drop for Waiting<'_, W> {
    fn drop(&mut self) {
        self.0.lock().waiting -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A parked "instance" that holds its slot, like a store does.
    struct Fake(#[allow(dead_code)] OwnedSemaphorePermit, u32);

    async fn fake(pool: &Instances<Fake>, id: u32) -> Fake {
        Fake(pool.slot().await.unwrap(), id)
    }

    #[tokio::test]
    async fn a_twin_gets_its_own_instance_back() {
        let pool = Instances::new(4, 4);
        let warm = fake(&pool, 7).await;
        pool.park(1, warm);
        assert!(pool.take(2).is_none());
        assert_eq!(pool.take(1).unwrap().1, 7);
        assert!(pool.take(1).is_none(), "taken means gone");
    }

    #[tokio::test]
    async fn past_capacity_the_least_recently_parked_goes() {
        let pool = Instances::new(8, 2);
        for twin in 1..=3 {
            let warm = fake(&pool, twin as u32).await;
            pool.park(twin, warm);
        }
        assert_eq!(pool.parked(), 2);
        assert_eq!(pool.slots.available_permits(), 8 - 2, "evicted slot freed");
        assert!(pool.take(1).is_none(), "twin 1 was least recent");
        assert!(pool.take(2).is_some() && pool.take(3).is_some());
    }

    #[tokio::test]
    async fn capacity_zero_parks_nothing() {
        let pool = Instances::new(2, 0);
        let warm = fake(&pool, 1).await;
        pool.park(1, warm);
        assert!(pool.take(1).is_none());
        assert_eq!(pool.slots.available_permits(), 2);
    }

    #[tokio::test]
    async fn a_new_instance_evicts_a_parked_one_when_slots_run_out() {
        let pool = Instances::new(2, 2);
        for twin in 1..=2 {
            let warm = fake(&pool, twin as u32).await;
            pool.park(twin, warm);
        }
        let third = tokio::time::timeout(Duration::from_secs(1), fake(&pool, 3))
            .await
            .expect("a parked instance gave up its slot");
        assert_eq!(third.1, 3);
        assert!(pool.take(1).is_none(), "the least recent one went");
        assert!(pool.take(2).is_some());
    }

    #[tokio::test]
    async fn a_finished_instance_goes_to_a_waiting_request_not_the_pool() {
        let pool = Arc::new(Instances::new(1, 1));
        let busy = fake(&pool, 1).await;
        let waiter = tokio::spawn({
            let pool = pool.clone();
            async move { fake(&pool, 2).await.1 }
        });
        // Let the waiter count itself.
        while pool.lock().waiting == 0 {
            tokio::task::yield_now().await;
        }
        pool.park(1, busy);
        let got = tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .expect("the waiter got the slot")
            .unwrap();
        assert_eq!(got, 2);
        assert_eq!(pool.parked(), 0);
        assert_eq!(pool.lock().waiting, 0);
    }

    #[tokio::test]
    async fn a_cancelled_wait_is_uncounted() {
        let pool = Instances::new(1, 1);
        let _busy = fake(&pool, 1).await;
        let waited = tokio::time::timeout(Duration::from_millis(20), pool.slot()).await;
        assert!(waited.is_err());
        assert_eq!(pool.lock().waiting, 0);
    }
}
