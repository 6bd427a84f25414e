//! The OpenAPI document, generated from the handlers' annotations and served
//! at `/api/v1/openapi.json`.

use actix_web::{HttpResponse, get};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes;

#[derive(OpenApi)]
#[openapi(
    info(title = "pilotgate", description = "Personalization pilots on exactly the people you may lawfully use, with the proof."),
    paths(
        routes::health::healthz,
        routes::health::readyz,
        routes::health::metrics,
        openapi_json,
        routes::purposes::create,
        routes::purposes::list,
        routes::consents::append,
        routes::subjects::resolve,
        routes::subjects::consents,
        routes::subjects::erase,
        routes::legal_basis_map::show,
        routes::experiments::create,
        routes::experiments::list,
        routes::experiments::show,
        routes::experiments::update,
        routes::experiments::submit,
        routes::experiments::approve,
        routes::experiments::deny,
        routes::experiments::start,
        routes::experiments::stop,
        routes::results::show,
        routes::eligibility::show,
        routes::assignments::assign,
        routes::events::record,
        routes::audit::list,
        routes::audit::verify,
    ),
    components(schemas(crate::error::ErrorBody)),
    modifiers(&BearerAuth),
)]
#[derive(Debug)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta", responses((status = 200, description = "The OpenAPI 3.1 document")))]
#[get("/api/v1/openapi.json")]
pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}
