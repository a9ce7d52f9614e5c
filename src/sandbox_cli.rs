//! `cancelgate sandbox`'s listen addresses. Every flag that names a provider derives from
//! `SimulatedProvider::ALL`: `--listen <provider>=<addr>` (repeatable), and one `--<provider>
//! <addr>` per simulator (the older spelling, which scripts still use), added to the command at
//! start. Unnamed providers listen at `SandboxConfig::standard(--host, --port-base)`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use cancelgate_sandbox::{SandboxConfig, SimulatedProvider};
use clap::{Arg, ArgMatches, value_parser};

/// Where the simulators listen.
#[derive(Debug, clap::Args)]
pub struct SandboxArgs {
    /// The address every simulator listens on, each on its own port.
    #[arg(long, default_value_t = IpAddr::from(Ipv4Addr::LOCALHOST))]
    host: IpAddr,
    /// The simulators listen on the ports after this one, one each, in the order of the
    /// `--<provider>` flags below (4101, 4102, ... by default); 0: any free port each.
    #[arg(long, default_value_t = 4100)]
    port_base: u16,
    /// One simulator's address, `<provider>=<ip:port>` (repeatable); wins over --host and --port-base.
    #[arg(long, value_name = "PROVIDER=ADDR", value_parser = parse_listen)]
    listen: Vec<(SimulatedProvider, SocketAddr)>,
}

fn parse_listen(s: &str) -> Result<(SimulatedProvider, SocketAddr), String> {
    let (provider, addr) = s.split_once('=').ok_or_else(|| format!("expected <provider>=<ip:port>, got {s:?}"))?;
    let provider = provider.parse::<SimulatedProvider>().map_err(|e| e.to_string())?;
    let addr = addr.parse::<SocketAddr>().map_err(|e| format!("{addr:?} is not an ip:port address: {e}"))?;
    Ok((provider, addr))
}

/// `command` with one `--<provider> <ADDR>` flag per simulator on its `sandbox` subcommand.
pub fn with_provider_flags(command: clap::Command) -> clap::Command {
    command.mut_subcommand("sandbox", |mut sandbox| {
        for p in SimulatedProvider::ALL {
            sandbox = sandbox.arg(
                Arg::new(p.id())
                    .long(p.id())
                    .value_name("ADDR")
                    .value_parser(value_parser!(SocketAddr))
                    .help(format!("Same as --listen {}=ADDR", p.id())),
            );
        }
        sandbox
    })
}

impl SandboxArgs {
    /// The configuration these flags ask for; `matches` are the `sandbox` subcommand's, for the
    /// per-provider flags of [`with_provider_flags`].
    pub fn config(&self, matches: Option<&ArgMatches>) -> SandboxConfig {
        let mut config = SandboxConfig::standard(self.host, self.port_base);
        for p in SimulatedProvider::ALL {
            if let Some(addr) = matches.and_then(|m| m.try_get_one::<SocketAddr>(p.id()).ok().flatten()) {
                config = config.with_addr(p, *addr);
            }
        }
        for &(p, addr) in &self.listen {
            config = config.with_addr(p, addr);
        }
        config
    }
}

#[cfg(test)]
mod tests {
    use clap::{FromArgMatches, Parser};

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        command: Command,
    }

    #[derive(Debug, clap::Subcommand)]
    enum Command {
        Sandbox(SandboxArgs),
    }

    fn config(args: &[&str]) -> Result<SandboxConfig, clap::Error> {
        use clap::CommandFactory;
        let matches = with_provider_flags(Cli::command()).try_get_matches_from(args)?;
        let Command::Sandbox(sandbox) = Cli::from_arg_matches(&matches)?.command;
        Ok(sandbox.config(matches.subcommand_matches("sandbox")))
    }

    #[test]
    fn every_simulator_has_its_flag_its_listen_form_and_a_standard_port() {
        let standard = config(&["cancelgate", "sandbox"]).unwrap();
        let mut ports = std::collections::BTreeSet::new();
        for p in SimulatedProvider::ALL {
            let addr = standard.addr(p);
            assert!(addr.ip().is_loopback() && addr.port() > 4100, "{p}: {addr}");
            assert!(ports.insert(addr.port()), "{p} shares port {}", addr.port());
            let flag = format!("--{}", p.id());
            let by_flag = config(&["cancelgate", "sandbox", &flag, "0.0.0.0:9001"]).unwrap();
            assert_eq!(by_flag.addr(p), "0.0.0.0:9001".parse().unwrap(), "{flag}");
            let listen = format!("{}=127.0.0.2:9002", p.id());
            let by_listen = config(&["cancelgate", "sandbox", "--listen", &listen]).unwrap();
            assert_eq!(by_listen.addr(p), "127.0.0.2:9002".parse().unwrap(), "--listen {listen}");
            for other in SimulatedProvider::ALL.into_iter().filter(|o| *o != p) {
                assert_eq!(by_listen.addr(other), standard.addr(other), "--listen {listen} moves only {p}");
            }
        }
        assert_eq!(standard.addr(SimulatedProvider::ChargeApi).port(), 4101, "the port compose and the README use");
    }

    #[test]
    fn host_port_base_and_bad_listen_values() {
        let all = config(&["cancelgate", "sandbox", "--host", "0.0.0.0", "--port-base", "5000"]).unwrap();
        assert_eq!(all.addr(SimulatedProvider::FrontPayment), "0.0.0.0:5002".parse().unwrap());
        let any = config(&["cancelgate", "sandbox", "--port-base", "0"]).unwrap();
        assert!(SimulatedProvider::ALL.iter().all(|p| any.addr(*p).port() == 0));
        for bad in ["chargeapi", "nobody=127.0.0.1:1", "chargeapi=localhost", "=127.0.0.1:1"] {
            assert!(config(&["cancelgate", "sandbox", "--listen", bad]).is_err(), "{bad}");
        }
        assert!(config(&["cancelgate", "sandbox", "--nobody", "127.0.0.1:1"]).is_err());
    }
}
