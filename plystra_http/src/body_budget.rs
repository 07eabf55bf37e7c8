//! What the server holds of request bodies being read: HTTP_BODY_BUFFER_BYTES all clients together, and at most
//! HTTP_BODY_BUFFER_BYTES_PER_CLIENT of it for one client. Bodies are read before any credential is known
//! (`app::read_body_first`), so the bound is what a client can do without one: the total keeps the process's
//! memory bounded, the share keeps one client from taking the whole of it (an attack on the running front held
//! every body slot from one address with 256 half-sent 1 MiB bodies, and every other client's POST was answered
//! 503 until they timed out).
//!
//! A client is its address as the request context resolved it (TRUSTED_PROXIES decide when a forwarded address
//! is believed), an IPv6 client its /64 (`client_ip::network`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::client_ip::network;

pub struct BodyBudget {
    /// KiB of bodies being read, all clients together.
    total: Arc<Semaphore>,
    per_client_kib: u32,
    /// KiB each client holds now (an entry only while it holds some: bounded by the open connections).
    held: Mutex<HashMap<IpAddr, u32>>,
}

/// Why a body was not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Bodies of HTTP_BODY_BUFFER_BYTES are being read, all clients together.
    AllClients,
    /// This client's bodies being read would pass HTTP_BODY_BUFFER_BYTES_PER_CLIENT.
    ThisClient,
}

/// A body's place in the budget, given back when dropped (when the request has been answered).
pub struct BodyPermit {
    budget: Arc<BodyBudget>,
    client: Option<(IpAddr, u32)>,
    _total: OwnedSemaphorePermit,
}

impl BodyBudget {
    pub fn new(total_bytes: usize, per_client_bytes: usize) -> Arc<BodyBudget> {
        Arc::new(BodyBudget {
            total: Arc::new(Semaphore::new(total_bytes / 1024)),
            per_client_kib: (per_client_bytes.min(total_bytes) / 1024).min(u32::MAX as usize) as u32,
            held: Mutex::default(),
        })
    }

    /// Room for a body of `kib` KiB from `client` (unknown when the server cannot tell, as for a request handed
    /// to the router in-process: then only the total counts).
    pub fn take(self: &Arc<Self>, client: Option<IpAddr>, kib: u32) -> Result<BodyPermit, Refusal> {
        let client = client.map(network);
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(key) = client {
            let now = held.get(&key).copied().unwrap_or(0);
            if now.saturating_add(kib) > self.per_client_kib {
                return Err(Refusal::ThisClient);
            }
        }
        let total = self.total.clone().try_acquire_many_owned(kib).map_err(|_| Refusal::AllClients)?;
        if let Some(key) = client {
            *held.entry(key).or_insert(0) += kib;
        }
        Ok(BodyPermit { budget: Arc::clone(self), client: client.map(|key| (key, kib)), _total: total })
    }
}

impl Drop for BodyPermit {
    fn drop(&mut self) {
        let Some((key, kib)) = self.client else { return };
        let mut held = self.budget.held.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = held.get_mut(&key) {
            *n = n.saturating_sub(kib);
            if *n == 0 {
                held.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn one_client_holds_at_most_its_share_and_gets_it_back() {
        let budget = BodyBudget::new(8 << 20, 2 << 20);
        let a = budget.take(ip("192.0.2.1"), 1024).unwrap();
        let _b = budget.take(ip("192.0.2.1"), 1024).unwrap();
        assert_eq!(budget.take(ip("192.0.2.1"), 1).err(), Some(Refusal::ThisClient));
        // Another client is not refused for the first one's bodies.
        let _c = budget.take(ip("192.0.2.2"), 1024).unwrap();
        drop(a);
        let _d = budget.take(ip("192.0.2.1"), 1024).unwrap();
        assert_eq!(budget.take(ip("192.0.2.1"), 1).err(), Some(Refusal::ThisClient));
    }

    #[test]
    fn every_address_of_one_ipv6_64_is_one_client() {
        let budget = BodyBudget::new(8 << 20, 1 << 20);
        let _a = budget.take(ip("2001:db8:1:2::1"), 1024).unwrap();
        assert_eq!(budget.take(ip("2001:db8:1:2:ffff::9"), 1).err(), Some(Refusal::ThisClient));
        let _b = budget.take(ip("2001:db8:1:3::1"), 1024).unwrap();
    }

    #[test]
    fn the_total_bounds_every_client_together() {
        let budget = BodyBudget::new(2 << 20, 1 << 20);
        let _a = budget.take(ip("192.0.2.1"), 1024).unwrap();
        let _b = budget.take(None, 1024).unwrap();
        assert_eq!(budget.take(ip("192.0.2.3"), 1).err(), Some(Refusal::AllClients));
        // A refusal by the total leaves the client's share as it was.
        assert!(budget.held.lock().unwrap().get(&"192.0.2.3".parse::<IpAddr>().unwrap()).is_none());
    }

    #[test]
    fn a_share_over_the_total_is_the_total() {
        let budget = BodyBudget::new(1 << 20, 64 << 20);
        let _a = budget.take(ip("192.0.2.1"), 1024).unwrap();
        assert_eq!(budget.take(ip("192.0.2.1"), 1).err(), Some(Refusal::ThisClient));
    }
}
