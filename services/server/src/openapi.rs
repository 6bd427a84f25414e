//! The OpenAPI document, generated from the handlers' annotations and served
//! at `/api/v1/openapi.json`.

use actix_web::{HttpResponse, get};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, Ref, ResponseBuilder};
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
        routes::purposes::eligible_share,
        routes::purposes::one,
        routes::purposes::update,
        routes::purposes::retire,
        routes::purposes::assessments,
        routes::purposes::assess,
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
        routes::results::download,
        routes::eligibility::show,
        routes::assignments::assign,
        routes::events::record,
        routes::audit::list,
        routes::audit::verify,
        routes::subjects::access,
        routes::subjects::lookup,
        routes::inventory::list,
        routes::inventory::create,
        routes::inventory::update,
        routes::notices::create,
        routes::notices::list,
        routes::notices::templates,
        routes::notices::show,
        routes::notices::publish,
        routes::privacy::issue,
        routes::privacy::show_form,
        routes::privacy::choose,
        routes::reconsent::check,
        routes::reconsent::reconsent_report,
        routes::exports::register,
        routes::exports::list_recipients,
        routes::exports::request,
        routes::exports::list,
        routes::exports::approve,
        routes::exports::deny,
        routes::exports::download,
    ),
    components(schemas(crate::error::ErrorBody, crate::service::results::DownloadFormat)),
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
        // Every route that takes a token may answer 429 to a client that has
        // presented too many failing ones (`throttle.rs`).
        let throttled = ResponseBuilder::new()
            .description("Too many failing tokens from this address with this token id (a valid token is never refused); see Retry-After")
            .content(
                "application/json",
                Content::new(Some(Ref::from_schema_name("ErrorBody"))),
            )
            .build();
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                if operation.security.as_ref().is_some_and(|s| !s.is_empty()) {
                    operation
                        .responses
                        .responses
                        .insert("429".to_owned(), throttled.clone().into());
                }
            }
        }
    }
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta", responses((status = 200, description = "The OpenAPI 3.1 document")))]
#[get("/api/v1/openapi.json")]
pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `$ref` names a schema the document defines (a parameter type
    /// that is only used in a query is not collected on its own).
    #[test]
    fn every_reference_resolves() {
        let document = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let schemas = document["components"]["schemas"].as_object().unwrap();
        let mut pending = vec![&document];
        let mut references = 0;
        while let Some(value) = pending.pop() {
            match value {
                serde_json::Value::Object(map) => {
                    if let Some(reference) = map.get("$ref").and_then(|r| r.as_str()) {
                        let name = reference.trim_start_matches("#/components/schemas/");
                        assert!(schemas.contains_key(name), "{reference} does not resolve");
                        references += 1;
                    }
                    pending.extend(map.values());
                }
                serde_json::Value::Array(items) => pending.extend(items),
                _ => {}
            }
        }
        assert!(references > 50, "{references} references");
    }
}
