//! The account a request acts for, and the store keys under it.
//!
//! Every vendor scopes its objects by the credential that made them: a
//! Stripe secret key, a Twilio Account SID, a Resend or Clerk API key. A
//! faithful twin does the same, so two test suites with different keys never
//! see each other's customers. The twin authenticates the request, calls
//! [`enter`] with the account the credential names, and from then on builds
//! keys with [`key`] and collections with [`collection`]: everything lands
//! under `acct/{account}/`, and objects of other accounts are unreachable.
//!
//! The scope is per request: an instance serves requests in turn, so a
//! twin enters the scope at the start of each one (a request that reaches
//! no credential check should [`leave`] it, or it would act for the last
//! caller). Keys are built with one allocation and no `format!`, because
//! every store access of every request goes through here.
//!
//! ```
//! use wt_sdk::{json, scope, serde_json::Value};
//!
//! scope::enter("sk_test_alice");
//! scope::collection::<Value>("customers").insert("cus_1", &json!({"id": "cus_1"})).unwrap();
//! assert_eq!(scope::key("idem"), "acct/sk_test_alice/idem");
//!
//! scope::enter("sk_test_bob");
//! assert!(scope::collection::<Value>("customers").get("cus_1").unwrap().is_none());
//! ```

use std::cell::RefCell;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Collection;
use crate::idempotency::Replays;

/// The first segment of every scoped key.
const ROOT: &str = "acct/";

thread_local! {
    static ACCOUNT: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Makes `account` the scope of the current request.
pub fn enter(account: &str) {
    ACCOUNT.with(|a| {
        let mut a = a.borrow_mut();
        a.clear();
        a.push_str(account);
    });
}

/// Leaves the scope: [`account`] is empty until the next [`enter`].
pub fn leave() {
    ACCOUNT.with(|a| a.borrow_mut().clear());
}

/// The current request's account (empty outside a scope).
pub fn account() -> String {
    ACCOUNT.with(|a| a.borrow().clone())
}

/// Runs `f` on the current account, borrowed.
pub fn with_account<R>(f: impl FnOnce(&str) -> R) -> R {
    ACCOUNT.with(|a| f(&a.borrow()))
}

/// `acct/{account}/` followed by `parts`, in one allocation.
pub fn key_of(parts: &[&str]) -> String {
    with_account(|account| {
        let len = ROOT.len() + account.len() + 1 + parts.iter().map(|p| p.len()).sum::<usize>();
        let mut key = String::with_capacity(len);
        key.push_str(ROOT);
        key.push_str(account);
        key.push('/');
        for part in parts {
            key.push_str(part);
        }
        key
    })
}

/// The store key `acct/{account}/{rest}`.
pub fn key(rest: &str) -> String {
    key_of(&[rest])
}

/// The current account's collection `name` (`acct/{account}/{name}/…`).
pub fn collection<T: Serialize + DeserializeOwned>(name: &str) -> Collection<T> {
    Collection::with_prefix(key(name))
}

/// The current account's idempotent replays (`acct/{account}/idem/…`).
pub fn replays() -> Replays {
    Replays::new(key("idem"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_live_under_the_entered_account() {
        enter("AC1");
        assert_eq!(key("messages"), "acct/AC1/messages");
        assert_eq!(
            key_of(&["verify/", "VA1", "/code/", "+1555"]),
            "acct/AC1/verify/VA1/code/+1555"
        );
        assert_eq!(collection::<u8>("x").prefix(), "acct/AC1/x");
        enter("AC2");
        assert_eq!(account(), "AC2");
        leave();
        assert_eq!(key("x"), "acct//x");
    }
}
