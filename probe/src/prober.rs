//! The prober of one pod: a thread that enters the pod's network namespace
//! and then runs a single-threaded tokio runtime serving all of the pod's
//! probe workers, hook requests and one-off probes. Every socket is opened
//! on that thread, so inside the pod's network.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::sync::{mpsc, Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle, ThreadId};
use std::time::Duration;

use podvm_proto::lifecycle::{HttpGet, ProbeAction};
use tokio::runtime::{Builder, Handle};
use tokio::sync::oneshot;
use tokio::task::AbortHandle;
use tokio::time::Instant;

use crate::timing::Timing;
use crate::worker::{self, Gate, RunContext};
use crate::{action, http, ExecRunner, Outcome, ReportFn, RunKey, RunProbes};

/// The workers of one watched run.
struct Run {
    gate: Arc<Gate>,
    task: AbortHandle,
}

/// One pod's prober. Dropping it (or [`Prober::shutdown`]) stops every
/// worker and joins its thread.
pub struct Prober {
    handle: Handle,
    thread_id: ThreadId,
    thread: Mutex<Option<JoinHandle<()>>>,
    stop: Mutex<Option<oneshot::Sender<()>>>,
    runs: Mutex<HashMap<RunKey, Run>>,
    timing: Timing,
}

impl Prober {
    /// Starts the prober's thread, named `name`: it calls `enter` (which
    /// should move the thread into the pod's network namespace), then runs
    /// the runtime. An error of `enter` is returned and the thread ends.
    pub fn start(
        name: &str,
        enter: impl FnOnce() -> io::Result<()> + Send + 'static,
    ) -> io::Result<Prober> {
        Self::start_with(name, enter, Timing::REAL)
    }

    /// [`Prober::start`] with seconds of the given length.
    pub(crate) fn start_with(
        name: &str,
        enter: impl FnOnce() -> io::Result<()> + Send + 'static,
        timing: Timing,
    ) -> io::Result<Prober> {
        let (ready_tx, ready_rx) = mpsc::channel::<io::Result<Handle>>();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let thread = thread::Builder::new()
            .name(name.replace('\0', "_"))
            .spawn(move || {
                if let Err(err) = enter() {
                    let _ = ready_tx.send(Err(err));
                    return;
                }
                let runtime = match Builder::new_current_thread().enable_all().build() {
                    Ok(runtime) => runtime,
                    Err(err) => {
                        let _ = ready_tx.send(Err(err));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(runtime.handle().clone()));
                runtime.block_on(async {
                    // Either a stop or the Prober gone.
                    let _ = stop_rx.await;
                });
                // Exec commands still running end by their own timeouts.
                runtime.shutdown_background();
            })?;
        let thread_id = thread.thread().id();
        let handle = match ready_rx.recv() {
            Ok(Ok(handle)) => handle,
            Ok(Err(err)) => {
                let _ = thread.join();
                return Err(err);
            }
            Err(_) => {
                let _ = thread.join();
                return Err(io::Error::other(
                    "the prober's thread ended before its runtime started",
                ));
            }
        };
        Ok(Prober {
            handle,
            thread_id,
            thread: Mutex::new(Some(thread)),
            stop: Mutex::new(Some(stop_tx)),
            runs: Mutex::new(HashMap::new()),
            timing,
        })
    }

    /// Starts the probe workers of one container run (replacing those of an
    /// earlier `watch` of the same run). `report` is called on the prober's
    /// thread and must not wait on the prober.
    pub fn watch(
        &self,
        run: RunKey,
        probes: RunProbes,
        exec: Arc<dyn ExecRunner>,
        report: ReportFn,
    ) {
        self.forget(run);
        let gate = Arc::new(Gate::new());
        let ctx = RunContext {
            key: run,
            report,
            gate: gate.clone(),
            exec,
            timing: self.timing,
            started: Instant::now(),
        };
        let task = self.handle.spawn(worker::run(ctx, probes)).abort_handle();
        lock(&self.runs).insert(run, Run { gate, task });
    }

    /// Stops the workers of `run`. Once it returns, no report of that run
    /// is delivered any more, and none is under way on another thread (a
    /// call from inside the report callback itself is allowed).
    pub fn forget(&self, run: RunKey) {
        let removed = lock(&self.runs).remove(&run);
        if let Some(removed) = removed {
            removed.gate.close(self.on_own_thread());
            removed.task.abort();
        }
    }

    /// Runs an `httpGet` lifecycle hook, waiting for it (at most `timeout`).
    /// Success for any HTTP answer; `Warning` when HTTPS fell back to HTTP
    /// (the text is kubelet's `LifecycleHTTPFallback` event message);
    /// `Failure` with Go's error text when no answer came.
    pub fn hook_http_get(&self, get: &HttpGet, timeout: Duration) -> Outcome {
        let get = get.clone();
        self.block(async move { http::hook(&get, timeout).await })
    }

    /// Runs one attempt of a probe action, waiting for it (kubelet's retries
    /// of errored attempts included).
    pub fn probe_once(
        &self,
        action: &ProbeAction,
        timeout: Duration,
        exec: Arc<dyn ExecRunner>,
    ) -> Outcome {
        let action = action.clone();
        self.block(async move { action::run_with_retries(&action, timeout, &exec).await })
    }

    /// Stops every worker and joins the thread (as dropping does).
    pub fn shutdown(self) {}

    /// Runs `work` on the runtime and waits for its outcome.
    fn block(&self, work: impl Future<Output = Outcome> + Send + 'static) -> Outcome {
        if self.on_own_thread() {
            return Outcome::Errored(
                "the prober cannot wait for itself on its own thread".to_owned(),
            );
        }
        self.run_on_runtime(work)
            .unwrap_or_else(|| Outcome::Errored("the prober has stopped".to_owned()))
    }

    /// Runs `work` on the runtime and waits for its result (`None` when the
    /// runtime is gone).
    pub(crate) fn run_on_runtime<T: Send + 'static>(
        &self,
        work: impl Future<Output = T> + Send + 'static,
    ) -> Option<T> {
        let (done_tx, done_rx) = mpsc::channel();
        self.handle.spawn(async move {
            let _ = done_tx.send(work.await);
        });
        done_rx.recv().ok()
    }

    /// The thread the runtime runs on.
    #[cfg(test)]
    pub(crate) fn thread_id(&self) -> ThreadId {
        self.thread_id
    }

    fn on_own_thread(&self) -> bool {
        thread::current().id() == self.thread_id
    }
}

impl Drop for Prober {
    fn drop(&mut self) {
        let inside = self.on_own_thread();
        for (_, run) in lock(&self.runs).drain() {
            run.gate.close(inside);
            run.task.abort();
        }
        if let Some(stop) = lock(&self.stop).take() {
            let _ = stop.send(());
        }
        let thread = lock(&self.thread).take();
        if let (Some(thread), false) = (thread, inside) {
            let _ = thread.join();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
