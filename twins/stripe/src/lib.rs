//! The Stripe twin: a stateful fake of the Stripe API that the official
//! SDKs talk to unchanged. Every secret key is its own account.
//!
//! Objects are kept as the vendor's JSON (`serde_json::Value`), as the API
//! returns them: its objects have dozens of fields, most echoed back as
//! given, and a handler edits the few it owns in place
//! (docs/architecture.md, "Twins").

// Object literals are big `json!` trees.
#![recursion_limit = "256"]

use std::sync::LazyLock;

use wt_sdk::idempotency::Served;
use wt_sdk::{
    Error, IdempotencyConflict, Info, Method, Request, Response, Router, Twin, auth, ids, scope,
};

pub mod billing;
pub mod charges;
pub mod checkout;
pub mod customers;
pub mod errors;
pub mod events;
pub mod expand;
pub mod invoice_items;
pub mod invoices;
pub mod payment_intents;
pub mod payment_methods;
pub mod prices;
pub mod products;
pub mod refunds;
pub mod setup_intents;
pub mod subscriptions;
pub mod test_clocks;
pub mod webhooks;
pub mod wire;

/// The API version the twin imitates (what `stripe` 16.1.0 pins).
pub const API_VERSION: &str = "2026-10-28.endive";

pub struct Stripe;

#[wt_sdk::twin]
impl Twin for Stripe {
    fn describe() -> Info {
        Info {
            name: "stripe".into(),
            version: "0.1.0".into(),
            api_version: API_VERSION.into(),
            default_port: 4111,
            license_required: false,
            description: "Stripe: customers, products, prices, payments, refunds, subscriptions, \
                          invoices, checkout, test clocks, events."
                .into(),
            settings: Vec::new(),
            idempotency: Some(IdempotencyConflict {
                header: "idempotency-key".into(),
                status: 409,
                body: serde_json::json!({"error": {
                    "type": "idempotency_error",
                    "message": "There is currently another in-progress request using this idempotent key (that probably means you submitted twice, and the other request is still going through). Please try again later.",
                }}),
            }),
        }
    }

    fn handle(request: Request) -> Response {
        let request_id = ids::new_with_len("req", 14);
        let version = request
            .header("stripe-version")
            .filter(|v| !v.is_empty())
            .unwrap_or(API_VERSION)
            .to_owned();
        let mut response =
            serve(request, &request_id).unwrap_or_else(|e| e.render_with(errors::render));
        response.set_header("request-id", request_id);
        response.set_header("stripe-version", version);
        response
    }
}

static ROUTER: LazyLock<Router> = LazyLock::new(router);
static PAGE_ROUTER: LazyLock<Router> = LazyLock::new(page_router);

fn router() -> Router {
    Router::new()
        .on_error(errors::render)
        .post("/v1/customers", customers::create)
        .get("/v1/customers", customers::list)
        .get("/v1/customers/search", customers::search)
        .get("/v1/customers/{id}", customers::retrieve)
        .post("/v1/customers/{id}", customers::update)
        .delete("/v1/customers/{id}", customers::delete)
        .get(
            "/v1/customers/{id}/payment_methods",
            payment_methods::list_for_customer,
        )
        .post("/v1/products", products::create)
        .get("/v1/products", products::list)
        .get("/v1/products/{id}", products::retrieve)
        .post("/v1/products/{id}", products::update)
        .delete("/v1/products/{id}", products::delete)
        .post("/v1/prices", prices::create)
        .get("/v1/prices", prices::list)
        .get("/v1/prices/{id}", prices::retrieve)
        .post("/v1/prices/{id}", prices::update)
        .post("/v1/payment_methods", payment_methods::create)
        .get("/v1/payment_methods", payment_methods::list)
        .get("/v1/payment_methods/{id}", payment_methods::retrieve)
        .post("/v1/payment_methods/{id}", payment_methods::update)
        .post("/v1/payment_methods/{id}/attach", payment_methods::attach)
        .post("/v1/payment_methods/{id}/detach", payment_methods::detach)
        .post("/v1/payment_intents", payment_intents::create)
        .get("/v1/payment_intents", payment_intents::list)
        .get("/v1/payment_intents/{id}", payment_intents::retrieve)
        .post("/v1/payment_intents/{id}", payment_intents::update)
        .post("/v1/payment_intents/{id}/confirm", payment_intents::confirm)
        .post("/v1/payment_intents/{id}/capture", payment_intents::capture)
        .post("/v1/payment_intents/{id}/cancel", payment_intents::cancel)
        .get("/v1/charges", charges::list)
        .get("/v1/charges/{id}", charges::retrieve)
        .post("/v1/refunds", refunds::create)
        .get("/v1/refunds", refunds::list)
        .get("/v1/refunds/{id}", refunds::retrieve)
        .post("/v1/setup_intents", setup_intents::create)
        .get("/v1/setup_intents", setup_intents::list)
        .get("/v1/setup_intents/{id}", setup_intents::retrieve)
        .post("/v1/setup_intents/{id}", setup_intents::update)
        .post("/v1/setup_intents/{id}/confirm", setup_intents::confirm)
        .post("/v1/setup_intents/{id}/cancel", setup_intents::cancel)
        .get("/v1/events", events::list)
        .get("/v1/events/{id}", events::retrieve)
        .post("/v1/webhook_endpoints", webhooks::create)
        .get("/v1/webhook_endpoints", webhooks::list)
        .get("/v1/webhook_endpoints/{id}", webhooks::retrieve)
        .post("/v1/webhook_endpoints/{id}", webhooks::update)
        .delete("/v1/webhook_endpoints/{id}", webhooks::delete)
        .post("/v1/subscriptions", subscriptions::create)
        .get("/v1/subscriptions", subscriptions::list)
        .get("/v1/subscriptions/{id}", subscriptions::retrieve)
        .post("/v1/subscriptions/{id}", subscriptions::update)
        .delete("/v1/subscriptions/{id}", subscriptions::cancel)
        .post("/v1/subscription_items", subscriptions::item_create)
        .get("/v1/subscription_items", subscriptions::item_list)
        .get("/v1/subscription_items/{id}", subscriptions::item_retrieve)
        .post("/v1/subscription_items/{id}", subscriptions::item_update)
        .delete("/v1/subscription_items/{id}", subscriptions::item_delete)
        .post("/v1/invoiceitems", invoice_items::create)
        .get("/v1/invoiceitems", invoice_items::list)
        .get("/v1/invoiceitems/{id}", invoice_items::retrieve)
        .post("/v1/invoiceitems/{id}", invoice_items::update)
        .delete("/v1/invoiceitems/{id}", invoice_items::delete)
        .post("/v1/invoices", invoices::create)
        .get("/v1/invoices", invoices::list)
        .get("/v1/invoices/{id}", invoices::retrieve)
        .post("/v1/invoices/{id}", invoices::update)
        .delete("/v1/invoices/{id}", invoices::delete)
        .post("/v1/invoices/{id}/finalize", invoices::finalize_invoice)
        .post("/v1/invoices/{id}/pay", invoices::pay)
        .post("/v1/invoices/{id}/void", invoices::void)
        .post(
            "/v1/invoices/{id}/mark_uncollectible",
            invoices::mark_uncollectible,
        )
        .get("/v1/invoices/{id}/lines", invoices::lines)
        .get("/v1/invoice_payments", invoices::payment_list)
        .get("/v1/invoice_payments/{id}", invoices::payment_retrieve)
        .post("/v1/checkout/sessions", checkout::create)
        .get("/v1/checkout/sessions", checkout::list)
        .get("/v1/checkout/sessions/{id}", checkout::retrieve)
        .post("/v1/checkout/sessions/{id}/expire", checkout::expire)
        .get(
            "/v1/checkout/sessions/{id}/line_items",
            checkout::list_line_items,
        )
        .post(
            "/v1/test_helpers/checkout/sessions/{id}/complete",
            checkout::complete,
        )
        .post("/v1/test_helpers/test_clocks", test_clocks::create)
        .get("/v1/test_helpers/test_clocks", test_clocks::list)
        .get("/v1/test_helpers/test_clocks/{id}", test_clocks::retrieve)
        .delete("/v1/test_helpers/test_clocks/{id}", test_clocks::delete)
        .post(
            "/v1/test_helpers/test_clocks/{id}/advance",
            test_clocks::advance,
        )
}

/// The hosted pages a Checkout Session's `url` and an invoice's
/// `hosted_invoice_url` name. They carry no API key: the id finds its
/// account.
fn page_router() -> Router {
    Router::new()
        .on_error(errors::render)
        .get("/c/pay/{id}", checkout::page)
        .post("/c/pay/{id}", checkout::page_pay)
        .get("/i/{id}", invoices::page)
}

/// The account a hosted page's path names, if it is one.
fn page_account(path: &str) -> Option<Result<String, Error>> {
    let (object, id) = if let Some(id) = path.strip_prefix("/c/pay/") {
        ("checkout.session", id)
    } else if let Some(id) = path.strip_prefix("/i/") {
        ("invoice", id)
    } else {
        return None;
    };
    Some(wire::page_owner(id).ok_or_else(|| Error::resource_missing(object, id)))
}

/// The account a secret key names: the key itself, once it looks like one.
fn account(request: &Request) -> Result<String, Error> {
    let creds = match auth::credentials(request) {
        Ok(Some(c)) => c,
        Ok(None) => return Err(errors::no_key()),
        Err(_) => {
            return Err(errors::bad_key(
                request.header("authorization").unwrap_or(""),
            ));
        }
    };
    let key = creds.key();
    if key.is_empty() {
        return Err(errors::no_key());
    }
    if auth::is_key_shaped(key, &["sk_test_", "rk_test_"], b"_-") {
        Ok(key.to_owned())
    } else {
        Err(errors::bad_key(key))
    }
}

fn serve(request: Request, request_id: &str) -> Result<Response, Error> {
    // Links back to the twin lead the way the client came (host, and the
    // host's route prefix when there is one).
    let base_url = request.base_url();
    if let Some(account) = page_account(&request.path) {
        scope::enter(&account?);
        wire::set_context(wire::Context {
            request_id: request_id.to_owned(),
            idempotency_key: None,
            base_url,
        });
        return Ok(PAGE_ROUTER.route(request));
    }
    let account = account(&request)?;
    let idempotency_key = match request.method {
        Method::Post | Method::Delete => request
            .header("idempotency-key")
            .filter(|k| !k.is_empty())
            .map(str::to_owned),
        _ => None,
    };
    scope::enter(&account);
    wire::set_context(wire::Context {
        request_id: request_id.to_owned(),
        idempotency_key: idempotency_key.clone(),
        base_url,
    });
    // Renewals, trial ends and cancellations due on the twin clock happen
    // before the request is served, so it sees their results.
    subscriptions::run_due(billing::TWIN_CLOCK, wire::now())?;
    let Some(key) = idempotency_key else {
        return Ok(ROUTER.route(request));
    };
    if key.len() > 255 {
        return Err(errors::invalid(
            "Idempotency-Key",
            "Idempotency-Key header must be at most 255 characters long.",
        ));
    }
    let replays = scope::replays();
    // Validation failures are not kept; card declines (402) are.
    let keep = |response: &Response| !response.is_client_error() || response.status == 402;
    let handle = |request| {
        ROUTER
            .route(request)
            .with_header("idempotency-key", key.clone())
    };
    match replays.serve(&key, request, keep, handle)? {
        Served::Replayed(response) => Ok(response.with_header("idempotent-replayed", "true")),
        Served::Mismatch => Err(Error::bad_request(format!(
            "Keys for idempotent requests can only be used with the same parameters they were \
             first used with. Try using a key other than '{key}' if you meant to execute a \
             different request."
        ))
        .with_kind("idempotency_error")),
        Served::Handled(response) => Ok(response),
    }
}

#[cfg(test)]
mod tests;
