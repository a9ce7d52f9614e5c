//! [`Sandbox`]: the simulators running, one listener each, and the in-process admin calls.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::sim::Sim;
use crate::{CallCount, CallsReport, FaultId, FaultRule, SandboxConfig, SandboxError, SimulatedProvider, serve};

/// A running set of the simulators. Stops on [`Sandbox::shutdown`] or when dropped.
pub struct Sandbox {
    /// In the order of [`SimulatedProvider::ALL`].
    sims: Vec<Arc<dyn Sim>>,
    addrs: SandboxConfig,
    tasks: Vec<JoinHandle<()>>,
}

impl fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sandbox").field("addrs", &self.addrs).finish_non_exhaustive()
    }
}

impl Sandbox {
    /// Binds every simulator's listener (port 0 works), spawns their servers on the current
    /// Tokio runtime and returns at once.
    pub async fn start(config: SandboxConfig) -> Result<Sandbox, SandboxError> {
        let mut listeners = Vec::with_capacity(SimulatedProvider::ALL.len());
        let mut addrs = config;
        for provider in SimulatedProvider::ALL {
            let addr = config.addr(provider);
            let bind_error = |source| SandboxError::Bind { provider, addr, source };
            let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
            addrs = addrs.with_addr(provider, listener.local_addr().map_err(bind_error)?);
            listeners.push((provider, listener));
        }
        let mut sims = Vec::with_capacity(listeners.len());
        let mut tasks = Vec::with_capacity(listeners.len());
        for (provider, listener) in listeners {
            let (sim, router) = (provider.spec().make)();
            let stop = sim.common().stop.subscribe();
            tracing::info!(provider = provider.id(), addr = %addrs.addr(provider), "sandbox simulator listening");
            tasks.push(tokio::spawn(serve(listener, router, stop)));
            sims.push(sim);
        }
        Ok(Sandbox { sims, addrs, tasks })
    }

    fn sim(&self, provider: SimulatedProvider) -> &dyn Sim {
        &*self.sims[provider.index()]
    }

    /// `http://127.0.0.1:PORT` of one simulator (no trailing slash).
    pub fn base_url(&self, provider: SimulatedProvider) -> String {
        format!("http://{}", self.addr(provider))
    }

    /// The bound address of one simulator.
    pub fn addr(&self, provider: SimulatedProvider) -> SocketAddr {
        self.addrs.addr(provider)
    }

    /// The counters of one reference (zero when never seen).
    pub fn calls(&self, provider: SimulatedProvider, reference: &str) -> CallCount {
        let sim = self.sim(provider);
        sim.calls(&sim.key(reference))
    }

    /// All cancel requests one simulator received.
    pub fn total_cancel_requests(&self, provider: SimulatedProvider) -> u64 {
        self.sim(provider).total()
    }

    /// The same report as `GET /_sandbox/calls`.
    pub fn calls_report(&self, provider: SimulatedProvider) -> CallsReport {
        self.sim(provider).report()
    }

    /// Zeroes one simulator's counters (`DELETE /_sandbox/calls`).
    pub fn reset_calls(&self, provider: SimulatedProvider) {
        self.sim(provider).reset_calls();
    }

    /// Injects a fault rule, as `POST /_sandbox/faults` does. A share is clamped to 0.0–1.0; an
    /// impossible status is served as 500.
    pub fn inject(&self, provider: SimulatedProvider, fault: FaultRule) -> FaultId {
        self.sim(provider).common().faults.add(fault)
    }

    /// Removes one rule; `false` when it is not in force on that simulator.
    pub fn remove_fault(&self, provider: SimulatedProvider, id: FaultId) -> bool {
        self.sim(provider).common().faults.remove(id)
    }

    /// Removes every fault rule of every simulator.
    pub fn clear_faults(&self) {
        for provider in SimulatedProvider::ALL {
            self.sim(provider).common().faults.clear();
        }
    }

    /// The current state of one reference, as `GET /_sandbox/state/{ref}` shows it.
    pub fn state(&self, provider: SimulatedProvider, reference: &str) -> Option<serde_json::Value> {
        let sim = self.sim(provider);
        sim.state(&sim.key(reference))
    }

    /// Creates a reference from the same JSON spec as the admin API's create endpoint; answers
    /// the created state.
    pub fn create(
        &self,
        provider: SimulatedProvider,
        spec: &serde_json::Value,
    ) -> Result<serde_json::Value, SandboxError> {
        let body = serde_json::to_vec(spec).unwrap_or_default();
        self.sim(provider)
            .create(&body)
            .map_err(|e| SandboxError::Admin { status: e.status.as_u16(), message: e.message })
    }

    /// Restores every simulator to its seeds, clearing faults and counters (`POST /_sandbox/reset`).
    pub fn reset(&self) {
        for provider in SimulatedProvider::ALL {
            let sim = self.sim(provider);
            sim.common().faults.clear();
            sim.reseed();
        }
    }

    fn signal_stop(&self) {
        for provider in SimulatedProvider::ALL {
            self.sim(provider).common().stop.send_replace(true);
        }
    }

    /// Stops the servers and waits until every connection is closed.
    pub async fn shutdown(mut self) {
        self.signal_stop();
        for task in std::mem::take(&mut self.tasks) {
            let _ = task.await;
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.signal_stop();
    }
}
