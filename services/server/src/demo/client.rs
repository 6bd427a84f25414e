//! The demo's HTTP client: it drives the server's public API like any client
//! would, with a bearer token, and turns a refusal into one line naming the
//! route, the status and the server's message.

use reqwest::Method;
use serde_json::Value;

/// The API of one running server.
#[derive(Debug, Clone)]
pub(crate) struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    pub(crate) fn new(base: String) -> Api {
        Api {
            http: reqwest::Client::new(),
            base,
        }
    }

    /// Calls `method path` as the holder of `token`; the JSON answer of a 2xx,
    /// else an error naming the route, the status and the server's message.
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<&Value>,
    ) -> Result<Value, String> {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let route = path.split('?').next().unwrap_or(path);
        let response = request
            .send()
            .await
            .map_err(|e| format!("{method} {route}: the server did not answer: {e}"))?;
        let status = response.status();
        let answer: Value = response
            .json()
            .await
            .map_err(|e| format!("{method} {route}: the answer is not JSON: {e}"))?;
        if status.is_success() {
            Ok(answer)
        } else {
            let message = answer["message"].as_str().unwrap_or("no message");
            Err(format!("{method} {route} answered {status}: {message}"))
        }
    }

    pub(crate) async fn get(&self, path: &str, token: &str) -> Result<Value, String> {
        self.call(Method::GET, path, token, None).await
    }

    pub(crate) async fn post(
        &self,
        path: &str,
        token: &str,
        body: &Value,
    ) -> Result<Value, String> {
        self.call(Method::POST, path, token, Some(body)).await
    }
}
