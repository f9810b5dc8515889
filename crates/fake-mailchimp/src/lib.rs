//! A fake Mailchimp Marketing API on loopback, built to behave as Mailchimp documents: used by the
//! tests, the benchmark and the offline demo.

pub mod audience;
pub mod faults;
pub mod groups;
pub mod server;

pub use audience::{FakeList, FakeMember};
pub use faults::{Fault, Target};
pub use server::RecordedRequest;

use std::net::SocketAddr;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The state behind the fake, shared by its request handlers and its owner.
pub struct Shared {
    pub api_key: String,
    pub lists: Mutex<Vec<FakeList>>,
    pub latency: Mutex<Duration>,
    /// Up to this much more delay, drawn per request, so that answers can overtake each other.
    pub latency_jitter: Mutex<Duration>,
    /// Extra delays for the next batch-subscribe requests, one per request in arrival order.
    pub batch_delays: Mutex<std::collections::VecDeque<Duration>>,
    pub requests: Mutex<Vec<RecordedRequest>>,
    /// Whether the request log keeps each request's body (tests read them; load runs do not).
    pub keep_bodies: std::sync::atomic::AtomicBool,
    pub faults: Mutex<faults::FaultProgram>,
    /// Requests in flight beyond this get 429, as Mailchimp's 10 simultaneous connections.
    pub connection_limit: AtomicUsize,
    pub in_flight: AtomicUsize,
    pub peak_in_flight: AtomicUsize,
    started: Instant,
}

impl Shared {
    pub fn new(api_key: &str, lists: Vec<FakeList>) -> Arc<Self> {
        Arc::new(Self {
            api_key: api_key.to_string(),
            lists: Mutex::new(lists),
            latency: Mutex::new(Duration::ZERO),
            latency_jitter: Mutex::new(Duration::ZERO),
            batch_delays: Mutex::new(Default::default()),
            requests: Mutex::new(Vec::new()),
            keep_bodies: std::sync::atomic::AtomicBool::new(true),
            faults: Mutex::new(Default::default()),
            connection_limit: AtomicUsize::new(server::CONNECTION_LIMIT),
            in_flight: AtomicUsize::new(0),
            peak_in_flight: AtomicUsize::new(0),
            started: Instant::now(),
        })
    }

    fn elapsed_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }
}

/// Serves the fake on a bound listener until `shutdown` resolves.
pub async fn serve(
    shared: Arc<Shared>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, server::router(shared)).with_graceful_shutdown(shutdown).await
}

/// A fake running on its own thread at 127.0.0.1 on a free port; it stops when dropped.
pub struct FakeMailchimp {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeMailchimp {
    pub fn start(api_key: &str, lists: Vec<FakeList>) -> std::io::Result<Self> {
        let shared = Shared::new(api_key, lists);
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = Arc::clone(&shared);
        let thread = std::thread::spawn(move || {
            let _ = runtime.block_on(serve(served, listener, async {
                let _ = stopped.await;
            }));
        });
        Ok(Self { shared, addr, stop: Some(stop), thread: Some(thread) })
    }

    /// The API root to put in `MAILCHIMP_API_BASE_URL`.
    pub fn base_url(&self) -> String {
        format!("http://{}/3.0", self.addr)
    }

    pub fn set_latency(&self, latency: Duration) {
        *self.shared.latency.lock().expect("latency lock") = latency;
    }

    /// Delays the next batch-subscribe requests by these amounts, in the order they arrive.
    pub fn delay_next_batches(&self, delays: &[Duration]) {
        self.shared.batch_delays.lock().expect("latency lock").extend(delays.iter().copied());
    }

    /// Adds a random extra delay of up to `jitter` to each answer.
    pub fn set_latency_jitter(&self, jitter: Duration) {
        *self.shared.latency_jitter.lock().expect("latency lock") = jitter;
    }

    /// Programs faults for the next requests that `target` selects, in order.
    pub fn inject(&self, target: Target, faults: &[Fault]) {
        let mut program = self.shared.faults.lock().expect("fault lock");
        for fault in faults {
            program.push(target, fault.clone());
        }
    }

    /// Faults programmed but not yet met by a request.
    pub fn faults_remaining(&self) -> usize {
        self.shared.faults.lock().expect("fault lock").remaining()
    }

    /// Lowers (or restores) the number of simultaneous requests answered before 429, as when
    /// other apps of the account use some of Mailchimp's 10 connections.
    pub fn set_connection_limit(&self, limit: usize) {
        self.shared.connection_limit.store(limit.max(1), std::sync::atomic::Ordering::SeqCst);
    }

    /// Runs `f` on the audience with this id (panics if there is none: a test set-up error).
    pub fn with_list<T>(&self, list_id: &str, f: impl FnOnce(&mut FakeList) -> T) -> T {
        let mut lists = self.shared.lists.lock().expect("audience lock");
        f(lists.iter_mut().find(|l| l.id == list_id).expect("the fake has this list"))
    }

    /// Deletes an audience, as a user might in the middle of a sync.
    pub fn remove_list(&self, list_id: &str) {
        self.shared.lists.lock().expect("audience lock").retain(|l| l.id != list_id);
    }

    pub fn members(&self, list_id: &str) -> Vec<FakeMember> {
        self.with_list(list_id, |l| l.members.values().cloned().collect())
    }

    pub fn member(&self, list_id: &str, email: &str) -> Option<FakeMember> {
        self.with_list(list_id, |l| l.member(email).cloned())
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.requests.lock().expect("request log lock").clone()
    }

    /// Requests being handled right now.
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn peak_in_flight(&self) -> usize {
        self.shared.peak_in_flight.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for FakeMailchimp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
