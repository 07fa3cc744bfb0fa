//! A fault-injecting HTTP proxy for the S3 tests: it sits between the job and the S3-compatible
//! server (`AWS_ENDPOINT_URL`) on loopback and answers chosen requests itself, with a 503 Slow
//! Down, a 500 Internal Error, a 403, or a connection closed without an answer, and forwards the
//! others. Plain std::net, one thread per connection, one request per connection (every answer
//! says `Connection: close`).
//!
//! A fault is always injected before the request reaches the server, as a throttled or failing
//! front end would: the server never sees a request that failed.

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// What the proxy answers instead of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fault {
    /// `503 Slow Down` with S3's `SlowDown` error body (throttling).
    SlowDown,
    /// `500 Internal Server Error` with S3's `InternalError` body.
    Internal,
    /// The request is read, then the connection is closed with no answer.
    Drop,
    /// `403 Forbidden` with S3's `AccessDenied` body: not transient.
    Denied,
}

/// Which requests fail.
#[derive(Debug, Clone)]
pub enum Plan {
    /// The first attempt of every distinct request (method, target with its query, and body)
    /// fails,
    /// with [`Fault::SlowDown`], [`Fault::Internal`] and [`Fault::Drop`] in turn; every later
    /// attempt of it is forwarded. Each request thus fails once, then succeeds when retried.
    FirstAttempts,
    /// Every request whose target contains `needle` fails with `fault`; the others are forwarded.
    Always {
        /// A part of the request target, percent-decoded (the path is `/<bucket>/<key>`).
        needle: String,
        /// The answer.
        fault: Fault,
    },
}

#[derive(Debug, Default)]
struct State {
    seen: HashSet<String>,
    /// Every request received, as `METHOD target`, in order.
    requests: Vec<String>,
    /// Every fault injected, with its request.
    faults: Vec<(Fault, String)>,
}

/// A running proxy; it stops when dropped.
pub struct FaultProxy {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

impl FaultProxy {
    /// Listen on `127.0.0.1:0` and forward to `upstream` (`http://host:port`).
    pub fn start(upstream: &str, plan: Plan) -> FaultProxy {
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, stp) = (state.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stp.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (st, plan, upstream) = (st.clone(), plan.clone(), upstream.clone());
                std::thread::spawn(move || {
                    // A client that gives up mid-request is not the proxy's failure.
                    let _ = serve(conn, &upstream, &plan, &st);
                });
            }
        });
        FaultProxy { addr, state, stop }
    }

    /// The endpoint to give the job as `AWS_ENDPOINT_URL`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The faults injected so far, with their requests.
    pub fn faults(&self) -> Vec<(Fault, String)> {
        self.state.lock().unwrap().faults.clone()
    }

    /// The requests received so far, as `METHOD target`.
    pub fn requests(&self) -> Vec<String> {
        self.state.lock().unwrap().requests.clone()
    }

    /// The number of faults of each kind injected so far.
    pub fn fault_counts(&self) -> BTreeMap<Fault, usize> {
        let mut counts = BTreeMap::new();
        for (f, _) in self.faults() {
            *counts.entry(f).or_insert(0) += 1;
        }
        counts
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accepting thread so it sees `stop`.
        let _ = TcpStream::connect(self.addr);
    }
}

/// One HTTP/1.1 request as read from the client: its head's lines and its body's raw bytes.
struct Request {
    method: String,
    target: String,
    headers: Vec<String>,
    body: Vec<u8>,
}

fn read_request(r: &mut impl BufRead) -> std::io::Result<Option<Request>> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default().to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h)? == 0 {
            return Ok(None);
        }
        let h = h.trim_end().to_string();
        if h.is_empty() {
            break;
        }
        headers.push(h);
    }
    let header = |name: &str| {
        headers.iter().find_map(|h| {
            let (k, v) = h.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    };
    let mut body = Vec::new();
    if let Some(len) = header("content-length") {
        let len: usize = len.parse().unwrap_or(0);
        body.resize(len, 0);
        r.read_exact(&mut body)?;
    } else if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        // Kept chunked, as sent: read up to and including the last chunk and the trailers.
        loop {
            let mut size = String::new();
            r.read_line(&mut size)?;
            body.extend_from_slice(size.as_bytes());
            let n = usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16)
                .unwrap_or(0);
            if n == 0 {
                loop {
                    let mut t = String::new();
                    r.read_line(&mut t)?;
                    body.extend_from_slice(t.as_bytes());
                    if t.trim().is_empty() {
                        break;
                    }
                }
                break;
            }
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk)?;
            body.extend_from_slice(&chunk);
        }
    }
    Ok(Some(Request {
        method,
        target,
        headers,
        body,
    }))
}

/// The fault for `req` under `plan`, if any (and record the request).
fn decide(plan: &Plan, req: &Request, state: &Mutex<State>) -> Option<Fault> {
    use std::hash::{Hash, Hasher};
    let key = format!("{} {}", req.method, req.target);
    // Bulk deletes are all `POST /<bucket>?delete`: the body names the objects.
    let mut body = std::collections::hash_map::DefaultHasher::new();
    req.body.hash(&mut body);
    let attempt = format!("{key} {:x}", body.finish());
    let mut st = state.lock().unwrap();
    st.requests.push(key.clone());
    let fault = match plan {
        Plan::FirstAttempts => {
            if st.seen.insert(attempt) {
                Some([Fault::SlowDown, Fault::Internal, Fault::Drop][(st.seen.len() - 1) % 3])
            } else {
                None
            }
        }
        Plan::Always { needle, fault } => percent_decoded(&req.target)
            .contains(needle.as_str())
            .then_some(*fault),
    };
    if let Some(f) = fault {
        st.faults.push((f, key));
    }
    fault
}

/// `dt%3D2026-11-20` → `dt=2026-11-20`.
fn percent_decoded(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b[i], hex) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn serve(
    conn: TcpStream,
    upstream: &str,
    plan: &Plan,
    state: &Mutex<State>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut conn = conn;
    let Some(req) = read_request(&mut reader)? else {
        return Ok(());
    };
    let answer = |status: &str, code: &str, message: &str| {
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code>\
             <Message>{message}</Message><Resource>{}</Resource>\
             <RequestId>fault-proxy</RequestId></Error>",
            req.target
        );
        let mut out = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n",
            body.len()
        );
        if req.method != "HEAD" {
            out.push_str(&body);
        }
        out
    };
    match decide(plan, &req, state) {
        Some(Fault::Drop) => return Ok(()),
        Some(Fault::SlowDown) => {
            let a = answer(
                "503 Slow Down",
                "SlowDown",
                "Please reduce your request rate.",
            );
            return conn.write_all(a.as_bytes());
        }
        Some(Fault::Internal) => {
            let a = answer(
                "500 Internal Server Error",
                "InternalError",
                "We encountered an internal error. Please try again.",
            );
            return conn.write_all(a.as_bytes());
        }
        Some(Fault::Denied) => {
            let a = answer("403 Forbidden", "AccessDenied", "Access Denied");
            return conn.write_all(a.as_bytes());
        }
        None => {}
    }
    // Forward on a fresh connection that the server closes after its answer.
    let mut up = TcpStream::connect(upstream)?;
    let mut head = format!("{} {} HTTP/1.1\r\n", req.method, req.target);
    for h in &req.headers {
        if !h.to_ascii_lowercase().starts_with("connection:") {
            head.push_str(h);
            head.push_str("\r\n");
        }
    }
    head.push_str("Connection: close\r\n\r\n");
    up.write_all(head.as_bytes())?;
    up.write_all(&req.body)?;
    let mut response = Vec::new();
    up.read_to_end(&mut response)?;
    // Pass the answer on, saying the connection closes after it.
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(response.len(), |p| p + 4);
    let (head, body) = response.split_at(split);
    let head = String::from_utf8_lossy(head);
    let mut out = String::new();
    for line in head.split("\r\n").filter(|l| !l.is_empty()) {
        if !line.to_ascii_lowercase().starts_with("connection:") {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str("Connection: close\r\n\r\n");
    conn.write_all(out.as_bytes())?;
    conn.write_all(body)?;
    conn.flush()
}
