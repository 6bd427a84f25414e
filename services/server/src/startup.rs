//! Builds the application in one place: state, middleware, routes, listener.
//! Tests bind port 0 and read the port back.

use std::net::TcpListener;

use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServiceRequest, ServiceResponse};
use actix_web::http::header::STRICT_TRANSPORT_SECURITY;
use actix_web::middleware::{Condition, DefaultHeaders, Next, from_fn};
use actix_web::{App, HttpServer, web};
use pilotgate_domain::pseudonym::KeyRing;
use pilotgate_store::Store;

use crate::anchor::{AnchorFile, spawn_anchoring};
use crate::auth;
use crate::config::{Config, redact_url};
use crate::error::{ApiError, extractors};
use crate::keys::attach_keys;
use crate::metrics::{self, Metrics};
use crate::openapi;
use crate::routes;

/// The `Strict-Transport-Security` of every response when `serve` speaks HTTPS: one year.
pub const HSTS: &str = "max-age=31536000";

/// What every handler may reach.
#[derive(Debug)]
pub struct AppState {
    pub store: Store,
    pub keys: KeyRing,
    pub metrics: Metrics,
    pub max_body_bytes: usize,
    /// Signs dashboard session cookies and CSRF tokens.
    pub sessions: crate::ui::session::SessionKeys,
    /// Failed token checks per client and token (API and sign-in form).
    pub auth_failures: crate::throttle::AuthFailures,
    /// Trusted proxies and the public scheme: who the client is, and whether cookies are Secure.
    pub network: crate::network::Network,
    /// The key client event ids are stored under.
    pub event_ids: pilotgate_domain::event_id::EventIdKey,
    /// Where the audit chain's head is anchored.
    pub anchors: AnchorFile,
    /// The audit page's last verification, reused while the chain's head and anchor stay.
    pub audit_verification: crate::service::audit::LastVerdict,
    /// How the operator says the database is encrypted at rest, if they say
    /// (evidence of the pilots' risk checklist).
    pub encrypted_at_rest: Option<String>,
    /// The consent form's settings: the controller its receipts name, the links' lifetime, framing.
    pub privacy: crate::receipts::PrivacySettings,
    /// The minimum cell size: no figure of fewer people is released.
    pub min_cell: pilotgate_analysis::disclosure::MinCell,
}

/// Why the service could not start, in one line.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot open the database {url}: {source}")]
    Database {
        url: String,
        #[source]
        source: pilotgate_store::StoreError,
    },
    #[error(transparent)]
    Keys(#[from] crate::keys::KeyLoadError),
    #[error("cannot serve HTTPS: {0}")]
    Tls(String),
    #[error("cannot listen on {bind}: {source}")]
    Bind {
        bind: String,
        #[source]
        source: std::io::Error,
    },
}

/// A built, bound, not yet running server.
pub struct Application {
    port: u16,
    server: Server,
    store: Store,
    anchors: AnchorFile,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl Application {
    /// Opens and migrates the database, loads and checks the keys, and binds the listener.
    pub async fn build(config: &Config) -> Result<Application, StartupError> {
        let (store, keys) = open_store_with_keys(config).await?;
        Application::with_store(config, store, keys)
    }

    /// Binds the listener for a store that is open, migrated and has its keys
    /// attached already (`open_store_with_keys`), with the pseudonym ring `keys`.
    pub fn with_store(
        config: &Config,
        store: Store,
        keys: KeyRing,
    ) -> Result<Application, StartupError> {
        let bind_error = |source| StartupError::Bind {
            bind: config.bind.clone(),
            source,
        };
        // HTTPS when a certificate and key are given: read them before binding.
        let tls = match (&config.tls_cert_file, &config.tls_key_file) {
            (Some(cert), Some(key)) => {
                Some(crate::tls::server_config(cert, key).map_err(StartupError::Tls)?)
            }
            _ => None,
        };
        let hsts = tls.is_some();
        let listener = TcpListener::bind(&config.bind).map_err(bind_error)?;
        let port = listener.local_addr().map_err(bind_error)?.port();
        let event_ids = store
            .event_id_key()
            .map_err(|source| StartupError::Database {
                url: redact_url(&config.database_url),
                source,
            })?;
        store.start_server_tasks();
        let state = web::Data::new(AppState {
            store: store.clone(),
            keys,
            metrics: Metrics::default(),
            max_body_bytes: config.max_body_bytes,
            sessions: crate::ui::session::SessionKeys::default(),
            auth_failures: crate::throttle::AuthFailures::default(),
            network: config.network(),
            event_ids,
            anchors: AnchorFile::new(config.audit_anchor_path()),
            audit_verification: Default::default(),
            encrypted_at_rest: config.encrypted_at_rest.clone(),
            privacy: crate::receipts::PrivacySettings::from_env(),
            min_cell: config.min_cell,
        });
        if tokio::runtime::Handle::try_current().is_ok() {
            spawn_anchoring(store.clone(), state.anchors.clone());
        }
        let anchors = state.anchors.clone();
        let (json, query, path) = extractors::configure(config.max_body_bytes);
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(json.clone())
                .app_data(query.clone())
                .app_data(path.clone())
                // Listed inner to outer: the last wrap sees the request first.
                .wrap(from_fn(auth::authorize))
                .wrap(from_fn(limit_body))
                .wrap(from_fn(metrics::observe))
                // Served over HTTPS: browsers must not come back over HTTP.
                .wrap(Condition::new(
                    hsts,
                    DefaultHeaders::new().add((STRICT_TRANSPORT_SECURITY, HSTS)),
                ))
                .configure(routes_of_the_service)
                .configure(crate::ui::routes)
                .default_service(web::to(not_found))
        });
        let server = match tls {
            Some(tls) => server.listen_rustls_0_23(listener, tls),
            None => server.listen(listener),
        }
        .map_err(bind_error)?
        .shutdown_timeout(10)
        .run();
        Ok(Application {
            port,
            server,
            store,
            anchors,
        })
    }

    /// Stops the server from elsewhere (the demo, tests).
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Runs the retention purge every `every` (`None`: never) beside the server.
    pub fn schedule_purge(&self, every: Option<std::time::Duration>, proof_days: u32) {
        if let Some(every) = every {
            crate::purge_job::spawn_purging(self.store.clone(), every, proof_days);
        }
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until SIGINT or SIGTERM, lets requests in flight finish, then closes the database.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let outcome = self.server.await;
        if let Err(error) = self.anchors.anchor_now(&self.store).await {
            tracing::error!(%error, "the audit chain was not anchored at shutdown");
        }
        tracing::info!("server stopped; closing the database");
        self.store.close().await;
        outcome
    }
}

/// Opens the database the configuration names, applies pending migrations,
/// and loads and attaches the keys (refused when they do not match the
/// database; see `keys.rs`); returns the store and the pseudonym key ring.
pub async fn open_store_with_keys(config: &Config) -> Result<(Store, KeyRing), StartupError> {
    let store = open_store(&config.database_url).await?;
    let keys = attach_keys(config, &store).await?;
    Ok((store, keys))
}

/// Opens the database at `url` and applies pending migrations.
pub async fn open_store(url: &str) -> Result<Store, StartupError> {
    let database_error = |source| StartupError::Database {
        url: redact_url(url),
        source,
    };
    let store = Store::connect(url).await.map_err(database_error)?;
    store.migrate().await.map_err(database_error)?;
    Ok(store)
}

/// Every route; each one must also be in `auth::PERMISSIONS` and the OpenAPI document.
/// The hot paths come first: actix tries routes in this order, and each
/// pattern with a `{segment}` costs a regex match.
fn routes_of_the_service(config: &mut web::ServiceConfig) {
    config
        .service(routes::assignments::assign)
        .service(routes::events::record)
        .service(routes::health::healthz)
        .service(routes::health::readyz)
        .service(routes::health::metrics)
        .service(openapi::openapi_json)
        .service(routes::purposes::create)
        .service(routes::purposes::list)
        .service(routes::purposes::eligible_share)
        .service(routes::purposes::one)
        .service(routes::purposes::update)
        .service(routes::purposes::retire)
        .service(routes::purposes::assessments)
        .service(routes::purposes::assess)
        .service(routes::consents::append)
        .service(routes::subjects::resolve)
        .service(routes::subjects::consents)
        .service(routes::subjects::erase)
        .service(routes::legal_basis_map::show)
        .service(routes::experiments::create)
        .service(routes::experiments::list)
        .service(routes::experiments::show)
        .service(routes::experiments::update)
        .service(routes::experiments::submit)
        .service(routes::experiments::approve)
        .service(routes::experiments::deny)
        .service(routes::experiments::start)
        .service(routes::experiments::stop)
        .service(routes::results::show)
        .service(routes::results::download)
        .service(routes::eligibility::show)
        .service(routes::audit::list)
        .service(routes::audit::verify)
        .service(routes::subjects::access)
        .service(routes::subjects::lookup)
        .service(routes::inventory::list)
        .service(routes::inventory::create)
        .service(routes::inventory::update)
        .service(routes::notices::create)
        .service(routes::notices::list)
        // Before the pattern `{id}` that "templates" would otherwise match.
        .service(routes::notices::templates)
        .service(routes::notices::show)
        .service(routes::notices::publish)
        .service(routes::privacy::issue)
        .service(routes::privacy::show_form)
        .service(routes::privacy::choose)
        .service(routes::reconsent::check)
        .service(routes::reconsent::reconsent_report)
        .service(routes::exports::register)
        .service(routes::exports::list_recipients)
        .service(routes::exports::request)
        .service(routes::exports::list)
        .service(routes::exports::approve)
        .service(routes::exports::deny)
        .service(routes::exports::download);
}

async fn not_found() -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::NotFound(
        "no route matches this path; the routes are listed at /api/v1/openapi.json".to_owned(),
    ))
}

/// Refuses a body whose declared length is over the limit before reading it.
/// Bodies without a length are cut at the same limit by the JSON extractor.
async fn limit_body(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let limit = req
        .app_data::<web::Data<AppState>>()
        .map_or(usize::MAX, |s| s.max_body_bytes);
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(ApiError::PayloadTooLarge(format!(
            "the body is larger than the limit of {limit} bytes"
        ))
        .into());
    }
    next.call(req).await
}
