//! The simulated providers: [`SimulatedProvider`], and `SPECS`, the one table every list of
//! providers in the sandbox (listeners, routers, admin calls, ids, bench references) derives from.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;

use axum::Router;
use serde::{Deserialize, Serialize};

use crate::sim::Sim;
use crate::{
    AccommodationSim, ChargeApiSim, FrontPaymentSim, SandboxError, accommodation_router, chargeapi_router,
    frontpayment_router, seeds,
};

/// The `n`-th benchmark reference of a provider: `res_bench{n}`,
/// `00000000-0000-4000-8000-{n:012x}`, `BK_BENCH_{n}`. Each is cancellable once.
pub fn bench_reference(provider: SimulatedProvider, n: u64) -> String {
    (provider.spec().bench_reference)(n)
}

/// What the sandbox knows of one simulator. [`SPECS`] is the one table of them: every list of
/// providers in the sandbox (listeners, routers, admin calls, ids) derives from it.
pub(crate) struct Spec {
    id: &'static str,
    bench_reference: fn(u64) -> String,
    /// A fresh, seeded simulator and the router that serves it.
    pub(crate) make: fn() -> (Arc<dyn Sim>, Router),
}

/// In the order of [`SimulatedProvider::ALL`] (a test checks it).
const SPECS: [Spec; 3] = [
    Spec {
        id: "chargeapi",
        bench_reference: |n| format!("{}{n}", seeds::CHARGEAPI_BENCH_PREFIX),
        make: || {
            let sim = ChargeApiSim::new();
            (sim.clone(), chargeapi_router(sim))
        },
    },
    Spec {
        id: "frontpayment",
        bench_reference: |n| format!("00000000-0000-4000-8000-{:012x}", n & 0xffff_ffff_ffff),
        make: || {
            let sim = FrontPaymentSim::new();
            (sim.clone(), frontpayment_router(sim))
        },
    },
    Spec {
        id: "accommodation",
        bench_reference: |n| format!("{}{n}", seeds::ACCOMMODATION_BENCH_PREFIX),
        make: || {
            let sim = AccommodationSim::new();
            (sim.clone(), accommodation_router(sim))
        },
    },
];

/// One of the simulated providers. Its id (`chargeapi`, `frontpayment`, `accommodation`) is the
/// gateway's provider id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SimulatedProvider {
    /// `chargeapi`.
    ChargeApi,
    /// `frontpayment`.
    FrontPayment,
    /// `accommodation`.
    Accommodation,
}

impl SimulatedProvider {
    /// All of them, in a fixed order (that of the sandbox's table of simulators, `SPECS`).
    pub const ALL: [SimulatedProvider; 3] =
        [SimulatedProvider::ChargeApi, SimulatedProvider::FrontPayment, SimulatedProvider::Accommodation];

    /// Its place in [`Self::ALL`] and [`SPECS`].
    pub(crate) fn index(self) -> usize {
        self as usize
    }

    pub(crate) fn spec(self) -> &'static Spec {
        &SPECS[self.index()]
    }

    /// The provider id.
    pub fn id(self) -> &'static str {
        self.spec().id
    }
}

impl fmt::Display for SimulatedProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

impl FromStr for SimulatedProvider {
    type Err = SandboxError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SimulatedProvider::ALL
            .into_iter()
            .find(|p| p.id() == s)
            .ok_or_else(|| SandboxError::UnknownProvider(s.to_owned()))
    }
}

/// Where the simulators listen. `Default`: 127.0.0.1, port 0 (any free port) each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SandboxConfig {
    addrs: [SocketAddr; SimulatedProvider::ALL.len()],
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig { addrs: [SocketAddr::from((Ipv4Addr::LOCALHOST, 0)); SimulatedProvider::ALL.len()] }
    }
}

impl SandboxConfig {
    /// This configuration with `provider` listening on `addr`.
    pub fn with_addr(mut self, provider: SimulatedProvider, addr: SocketAddr) -> Self {
        self.addrs[provider.index()] = addr;
        self
    }

    /// The address configured for `provider`.
    pub fn addr(&self, provider: SimulatedProvider) -> SocketAddr {
        self.addrs[provider.index()]
    }

    /// Every simulator on `host`, on consecutive ports after `port_base` in the order of
    /// [`SimulatedProvider::ALL`] (`port_base + 1` the first); `port_base` 0: any free port each.
    /// `cancelgate sandbox` listens at `standard(127.0.0.1, 4100)` unless told otherwise.
    pub fn standard(host: IpAddr, port_base: u16) -> Self {
        let mut config = SandboxConfig { addrs: [SocketAddr::new(host, 0); SimulatedProvider::ALL.len()] };
        if port_base != 0 {
            for (i, addr) in (1u16..).zip(config.addrs.iter_mut()) {
                addr.set_port(port_base.saturating_add(i));
            }
        }
        config
    }
}

/// A router for one provider with a fresh, seeded simulator (for `oneshot` router tests; serve it
/// with [`crate::serve`] for faults that drop connections).
pub fn router(provider: SimulatedProvider) -> Router {
    (provider.spec().make)().1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_in_the_order_of_all() {
        for (i, provider) in SimulatedProvider::ALL.into_iter().enumerate() {
            assert_eq!(provider.index(), i);
            let (sim, _) = (provider.spec().make)();
            assert_eq!(sim.provider(), provider, "{}", provider.id());
            assert_eq!(provider.id().parse::<SimulatedProvider>().ok(), Some(provider));
            let json = serde_json::to_value(provider).ok();
            assert_eq!(json.as_ref().and_then(|v| v.as_str()), Some(provider.id()), "serde names it by its id");
        }
    }

    #[test]
    fn the_standard_addresses_are_one_port_each_in_the_order_of_all() {
        let host = IpAddr::from(Ipv4Addr::UNSPECIFIED);
        let config = SandboxConfig::standard(host, 4100);
        for (i, provider) in SimulatedProvider::ALL.into_iter().enumerate() {
            assert_eq!(config.addr(provider), SocketAddr::new(host, 4101 + u16::try_from(i).unwrap()));
        }
        assert_eq!(config.addr(SimulatedProvider::Accommodation).port(), 4103, "the ports the README names");
        let any = SandboxConfig::standard(host, 0);
        assert!(SimulatedProvider::ALL.iter().all(|p| any.addr(*p) == SocketAddr::new(host, 0)));
    }
}
