//! The data inventory: the categories of personal data pilots may name,
//! each with its sensitivity class and the measures it requires.

use actix_web::{HttpResponse, get, post, put, web};

use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::service;
use crate::service::inventory::{CategoryInput, CategoryList, CategoryView};
use crate::startup::AppState;

/// The inventory, by key: each category's class, whether pilots may use it,
/// and the measures it requires; and the segment dimensions a design may
/// name, each with its values and category.
#[utoipa::path(get, path = "/api/v1/data-categories", tag = "inventory", security(("bearer" = [])), responses(
    (status = 200, body = CategoryList),
    (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
))]
#[get("/api/v1/data-categories")]
pub async fn list(_caller: Caller, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let categories = service::inventory::list(&state.store).await?;
    Ok(HttpResponse::Ok().json(CategoryList {
        categories: categories.iter().map(CategoryView::from).collect(),
        segment_dimensions: service::inventory::segment_dimensions(),
    }))
}

/// Adds a category to the inventory (audited as `data_category.create`).
#[utoipa::path(post, path = "/api/v1/data-categories", tag = "inventory", request_body = CategoryInput, security(("bearer" = [])), responses(
    (status = 201, body = CategoryView),
    (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    (status = 409, description = "The key is in the inventory already", body = ErrorBody),
    (status = 413, body = ErrorBody), (status = 422, body = ErrorBody),
))]
#[post("/api/v1/data-categories")]
pub async fn create(
    caller: Caller,
    state: web::Data<AppState>,
    body: web::Json<CategoryInput>,
) -> Result<HttpResponse, ApiError> {
    let category = service::inventory::create(&state.store, &caller.0, body.into_inner()).await?;
    Ok(HttpResponse::Created().json(CategoryView::from(&category)))
}

/// Replaces a category (audited as `data_category.update`, before and
/// after). Pilots designed already keep their categories; their checklist
/// follows the new measures. A category made prohibited sends the submitted
/// and approved pilots that name it back to draft (audited each). The
/// special-category and children's categories stay prohibited (422).
#[utoipa::path(put, path = "/api/v1/data-categories/{key}", tag = "inventory", request_body = CategoryInput, params(("key" = String, Path)), security(("bearer" = [])), responses(
    (status = 200, body = CategoryView),
    (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
    (status = 413, body = ErrorBody), (status = 422, body = ErrorBody),
))]
#[put("/api/v1/data-categories/{key}")]
pub async fn update(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<CategoryInput>,
) -> Result<HttpResponse, ApiError> {
    let category =
        service::inventory::update(&state.store, &caller.0, &path, body.into_inner()).await?;
    Ok(HttpResponse::Ok().json(CategoryView::from(&category)))
}
