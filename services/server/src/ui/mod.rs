//! The dashboards: server-rendered pages under `/ui`, for people with an API
//! token. A thin layer: each handler takes a `Session` (the extractor sends
//! people without one to sign in), checks that the role may read the API
//! route the page mirrors (the one permission table decides), reads through
//! the store or the application services the API uses, fills the
//! `dashboards` view model and renders it; failures are `UiError`. One
//! handler file per page under `pages/`, as `dashboards/src/pages/`.

mod error;
mod pages;
pub mod session;

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use pilotgate_dashboards::Template;
use pilotgate_dashboards::urls::patterns;

pub use error::UiError;
pub use pages::memo::memo_model;
pub use session::Session;

/// Every page route; each is `Public` in the permission table (no bearer
/// token) and checks its session through the `Session` extractor.
pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route(patterns::ROOT, web::get().to(pages::sign_in::root))
        .route(patterns::HOME, web::get().to(pages::sign_in::home))
        .route(patterns::SIGN_IN, web::get().to(pages::sign_in::form))
        .route(patterns::SIGN_IN, web::post().to(pages::sign_in::sign_in))
        .route(patterns::SIGN_OUT, web::post().to(pages::sign_in::sign_out))
        .route(
            patterns::EXPERIMENTS,
            web::get().to(pages::experiments::page),
        )
        // Before the pattern `{key}` that "new" would otherwise match.
        .route(
            patterns::NEW_EXPERIMENT,
            web::get().to(pages::design::new_form),
        )
        .route(
            patterns::NEW_EXPERIMENT,
            web::post().to(pages::design::create),
        )
        .route(patterns::RESULTS, web::get().to(pages::results::page))
        .route(patterns::RESULTS_CSV, web::get().to(pages::results::csv))
        .route(patterns::RESULTS_JSON, web::get().to(pages::results::json))
        .route(patterns::MEMO, web::get().to(pages::memo::page))
        .route(patterns::EDIT, web::get().to(pages::design::edit_form))
        .route(patterns::EDIT, web::post().to(pages::design::update))
        .route(
            patterns::SUBMIT,
            web::get().to(pages::lifecycle::confirm_submit),
        )
        .route(patterns::SUBMIT, web::post().to(pages::lifecycle::submit))
        .route(
            patterns::START,
            web::get().to(pages::lifecycle::confirm_start),
        )
        .route(patterns::START, web::post().to(pages::lifecycle::start))
        .route(
            patterns::STOP,
            web::get().to(pages::lifecycle::confirm_stop),
        )
        .route(patterns::STOP, web::post().to(pages::lifecycle::stop))
        .route(patterns::COMPLIANCE, web::get().to(pages::compliance::page))
        .route(
            patterns::COMPLIANCE_CSV,
            web::get().to(pages::compliance::csv),
        )
        .route(
            patterns::APPROVE,
            web::post().to(pages::compliance::approve),
        )
        .route(patterns::DENY, web::post().to(pages::compliance::deny))
        .route(patterns::CONSENTS, web::get().to(pages::consents::page))
        .route(patterns::AUDIT, web::get().to(pages::audit::page))
        .route(patterns::PURPOSES, web::get().to(pages::purposes::list))
        .route(patterns::PURPOSES, web::post().to(pages::purposes::create))
        .route(patterns::PURPOSE, web::get().to(pages::purposes::page))
        .route(patterns::PURPOSE, web::post().to(pages::purposes::update))
        .route(
            patterns::PURPOSE_ASSESSMENTS,
            web::post().to(pages::purposes::assess),
        )
        .route(
            patterns::PURPOSE_RETIRE,
            web::post().to(pages::purposes::retire),
        )
        .route(patterns::SUBJECTS, web::get().to(pages::subjects::form))
        .route(patterns::SUBJECTS, web::post().to(pages::subjects::lookup))
        .route(
            patterns::SUBJECT_DOWNLOAD,
            web::post().to(pages::subjects::download),
        )
        .route(
            patterns::SUBJECT_ERASE,
            web::post().to(pages::subjects::confirm_erasure),
        )
        .route(
            patterns::SUBJECT_ERASURE,
            web::post().to(pages::subjects::erase),
        )
        .route(patterns::RECIPIENTS, web::get().to(pages::recipients::page))
        .route(
            patterns::RECIPIENTS,
            web::post().to(pages::recipients::register),
        )
        .route(patterns::INVENTORY, web::get().to(pages::inventory::page))
        .route(
            patterns::INVENTORY,
            web::post().to(pages::inventory::create),
        )
        .route(
            patterns::INVENTORY_ITEM,
            web::post().to(pages::inventory::update),
        )
        // A notice's texts in several languages outgrow the default form limit
        // (16 KiB); the body limit of the whole service still applies.
        .service(
            web::resource(patterns::NOTICES)
                .app_data(web::FormConfig::default().limit(1024 * 1024))
                .route(web::get().to(pages::notices::page))
                .route(web::post().to(pages::notices::create)),
        )
        .service(
            web::resource(patterns::NOTICE_VERSIONS)
                .app_data(web::FormConfig::default().limit(1024 * 1024))
                .route(web::post().to(pages::notices::publish)),
        )
        .route(patterns::PRIVACY, web::get().to(pages::privacy::page))
        .route(patterns::PRIVACY, web::post().to(pages::privacy::save))
        .route(
            patterns::PRIVACY_RECEIPT,
            web::get().to(pages::privacy::receipt),
        )
        .route(
            patterns::CONSENTS_RECONSENT_CSV,
            web::get().to(pages::consents::reconsent_csv),
        )
        .route(
            patterns::PILOT_EXPORTS,
            web::post().to(pages::exports::request),
        )
        .route(
            patterns::EXPORT_DOWNLOAD,
            web::get().to(pages::exports::download),
        )
        .route(
            patterns::EXPORT_APPROVE,
            web::post().to(pages::exports::approve),
        )
        .route(patterns::EXPORT_DENY, web::post().to(pages::exports::deny));
}

/// An HTML response with `status`.
pub fn html(status: actix_web::http::StatusCode, page: &impl Template) -> HttpResponse {
    match page.render() {
        Ok(body) => HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header(("x-frame-options", "DENY"))
            .insert_header((
                "content-security-policy",
                "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'",
            ))
            .body(body),
        Err(error) => {
            tracing::error!(%error, "a page failed to render");
            HttpResponse::InternalServerError()
                .content_type("text/plain; charset=utf-8")
                .body("the page could not be rendered")
        }
    }
}

/// A redirect (303) to `location`.
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}
