//! Headless Chromium driven over the DevTools protocol, for end-to-end tests
//! of the dashboards: navigate, type into forms, read the DOM, take
//! screenshots. Synchronous on purpose: call it from `spawn_blocking` so the
//! server under test keeps running on the async runtime.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};
use tungstenite::{Message, WebSocket};

/// How long one protocol exchange may take.
const PATIENCE: Duration = Duration::from_secs(60);

/// The Chromium binary: `PILOTGATE_CHROMIUM`, else `chromium` or
/// `chromium-browser` on the PATH, installed by `.ci/chromium` when missing.
pub fn chromium_binary() -> PathBuf {
    if let Ok(path) = std::env::var("PILOTGATE_CHROMIUM") {
        return PathBuf::from(path);
    }
    let on_path = || {
        ["chromium", "chromium-browser"].iter().find_map(|name| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|dir| dir.join(name))
                    .find(|candidate| candidate.is_file())
            })
        })
    };
    if let Some(found) = on_path() {
        return found;
    }
    // The tests of one binary run in threads: one installs, the others wait for it.
    static INSTALLING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _installing = INSTALLING.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(found) = on_path() {
        return found;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.ci/chromium");
    let installed = Command::new("bash")
        .arg(&script)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    match (installed, on_path()) {
        (true, Some(found)) => found,
        _ => panic!(
            "Chromium is needed for the browser tests and could not be installed: \
             run `bash .ci/chromium` (Debian package `chromium`) or set PILOTGATE_CHROMIUM"
        ),
    }
}

/// A headless Chromium with one page, killed when dropped.
pub struct Browser {
    child: Child,
    socket: WebSocket<TcpStream>,
    session: String,
    next_id: u64,
    /// Events received while waiting for answers, oldest first.
    events: Vec<Value>,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts Chromium and attaches to a blank page.
    pub fn launch() -> Browser {
        let profile = tempfile::tempdir().expect("a profile folder");
        let mut child = Command::new(chromium_binary())
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--hide-scrollbars",
                "--remote-debugging-port=0",
                "--remote-allow-origins=*",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start Chromium");
        let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let endpoint = loop {
            let line = lines
                .next()
                .expect("Chromium stopped before it listened")
                .expect("read Chromium's output");
            if let Some(at) = line.find("ws://") {
                break line[at..].trim().to_owned();
            }
        };
        // Keep draining Chromium's output so it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});

        let address = endpoint
            .trim_start_matches("ws://")
            .split('/')
            .next()
            .expect("host:port")
            .to_owned();
        let stream = TcpStream::connect(&address).expect("connect to DevTools");
        stream
            .set_read_timeout(Some(PATIENCE))
            .expect("a read timeout");
        let (socket, _) =
            tungstenite::client(endpoint.as_str(), stream).expect("DevTools handshake");
        let mut browser = Browser {
            child,
            socket,
            session: String::new(),
            next_id: 0,
            events: Vec::new(),
            _profile: profile,
        };
        let target = browser.call_browser("Target.createTarget", json!({"url": "about:blank"}));
        let target_id = target["targetId"].as_str().expect("a target").to_owned();
        let attached = browser.call_browser(
            "Target.attachToTarget",
            json!({"targetId": target_id, "flatten": true}),
        );
        browser.session = attached["sessionId"]
            .as_str()
            .expect("a session")
            .to_owned();
        browser.call("Page.enable", json!({}));
        browser.call("Runtime.enable", json!({}));
        browser
    }

    /// Sends a command to the page and returns its result.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        let session = self.session.clone();
        self.send(method, params, Some(&session))
    }

    fn call_browser(&mut self, method: &str, params: Value) -> Value {
        self.send(method, params, None)
    }

    fn send(&mut self, method: &str, params: Value, session: Option<&str>) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({"id": id, "method": method, "params": params});
        if let Some(session) = session {
            message["sessionId"] = json!(session);
        }
        self.socket
            .send(Message::text(message.to_string()))
            .expect("send to DevTools");
        let deadline = Instant::now() + PATIENCE;
        loop {
            assert!(
                Instant::now() < deadline,
                "{method}: no answer from Chromium"
            );
            let incoming = self.receive();
            if incoming["id"].as_u64() == Some(id) {
                if let Some(error) = incoming.get("error") {
                    panic!("{method} failed: {error}");
                }
                return incoming["result"].clone();
            }
            if incoming.get("method").is_some() {
                self.events.push(incoming);
            }
        }
    }

    fn receive(&mut self) -> Value {
        loop {
            match self.socket.read().expect("read from DevTools") {
                Message::Text(text) => {
                    return serde_json::from_str(text.as_str()).expect("DevTools speaks JSON");
                }
                Message::Close(_) => panic!("Chromium closed the DevTools connection"),
                _ => {}
            }
        }
    }

    /// Runs `action`, then waits until the page it leads to has loaded.
    fn until_loaded(&mut self, action: impl FnOnce(&mut Browser)) {
        self.events.clear();
        action(self);
        let deadline = Instant::now() + PATIENCE;
        loop {
            if self
                .events
                .iter()
                .any(|e| e["method"] == "Page.loadEventFired")
            {
                self.events.clear();
                return;
            }
            assert!(Instant::now() < deadline, "the page did not load");
            let incoming = self.receive();
            if incoming.get("method").is_some() {
                self.events.push(incoming);
            }
        }
    }

    /// Opens `url` and waits for it to load.
    pub fn open(&mut self, url: &str) {
        self.until_loaded(|browser| {
            let answer = browser.call("Page.navigate", json!({"url": url}));
            assert!(
                answer.get("errorText").is_none(),
                "could not open {url}: {answer}"
            );
        });
    }

    /// Evaluates `expression` in the page and returns its value as JSON.
    pub fn evaluate(&mut self, expression: &str) -> Value {
        let answer = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
        );
        if let Some(exception) = answer.get("exceptionDetails") {
            panic!("{expression}: {exception}");
        }
        answer["result"]["value"].clone()
    }

    /// Types `text` into the field matched by `selector`, as a person would.
    pub fn type_into(&mut self, selector: &str, text: &str) {
        self.evaluate(&format!(
            "document.querySelector({}).focus()",
            json!(selector)
        ));
        self.call("Input.insertText", json!({"text": text}));
    }

    /// Clicks the element matched by `selector` and waits for the page it
    /// leads to.
    pub fn click_and_wait(&mut self, selector: &str) {
        let expression = format!("document.querySelector({}).click()", json!(selector));
        self.until_loaded(|browser| {
            browser.evaluate(&expression);
        });
    }

    /// Lets pages save their downloads into `folder`.
    pub fn save_downloads_in(&mut self, folder: &Path) {
        self.call_browser(
            "Browser.setDownloadBehavior",
            json!({"behavior": "allow", "downloadPath": folder.to_str().expect("a UTF-8 path")}),
        );
    }

    /// Clicks the link matched by `selector`, as a person would, and waits
    /// until the file it downloads is whole in `folder` (set with
    /// `save_downloads_in`), which must hold no other file named `name`;
    /// returns the file's bytes.
    pub fn download(&mut self, selector: &str, folder: &Path, name: &str) -> Vec<u8> {
        let _ = std::fs::remove_file(folder.join(name));
        self.call(
            "Runtime.evaluate",
            json!({"expression": format!("document.querySelector({}).click()", json!(selector)),
                   "userGesture": true}),
        );
        let deadline = Instant::now() + PATIENCE;
        loop {
            let path = folder.join(name);
            let partial = folder.join(format!("{name}.crdownload"));
            if path.exists() && !partial.exists() {
                return std::fs::read(path).expect("read the download");
            }
            assert!(Instant::now() < deadline, "{name} was not downloaded");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The page's URL.
    pub fn url(&mut self) -> String {
        self.evaluate("location.href")
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Sets the viewport to `width` x `height` CSS pixels (a phone when `mobile`).
    pub fn viewport(&mut self, width: u32, height: u32, mobile: bool) {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile}),
        );
    }

    /// Saves a PNG of the whole page to `path`; returns its size in bytes.
    pub fn screenshot(&mut self, path: &Path) -> usize {
        let shot = self.call(
            "Page.captureScreenshot",
            json!({"format": "png", "captureBeyondViewport": true}),
        );
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().expect("image data"))
            .expect("base64 image");
        if let Some(folder) = path.parent() {
            std::fs::create_dir_all(folder).expect("a screenshot folder");
        }
        std::fs::write(path, &png).expect("write the screenshot");
        png.len()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
