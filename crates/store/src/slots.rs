//! The sessions of one source address (CONN-9): a cap well below the server's total, so that
//! one address cannot take every slot from the others.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

/// Counts the sessions of each source address against a cap.
#[derive(Debug)]
pub struct AddressSlots {
    cap: usize,
    taken: Mutex<HashMap<IpAddr, usize>>,
}

/// One session's slot for its address, given back when dropped.
#[derive(Debug)]
pub struct AddressSlot {
    slots: Arc<AddressSlots>,
    ip: IpAddr,
}

impl AddressSlots {
    /// At most `cap` sessions per address (`usize::MAX`: no cap of its own).
    pub fn new(cap: usize) -> Arc<Self> {
        Arc::new(Self {
            cap,
            taken: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for a session from `ip`, or `None` when that address holds `cap` sessions
    /// already (the connection gets `err 420 busy`, CONN-9).
    pub fn take(self: &Arc<Self>, ip: IpAddr) -> Option<AddressSlot> {
        let mut taken = self.taken.lock().unwrap_or_else(PoisonError::into_inner);
        let n = taken.entry(canonical(ip)).or_insert(0);
        if *n >= self.cap {
            return None;
        }
        *n += 1;
        Some(AddressSlot {
            slots: Arc::clone(self),
            ip: canonical(ip),
        })
    }

    /// How many sessions `ip` holds now.
    pub fn held(&self, ip: IpAddr) -> usize {
        let taken = self.taken.lock().unwrap_or_else(PoisonError::into_inner);
        taken.get(&canonical(ip)).copied().unwrap_or(0)
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut taken = self
            .slots
            .taken
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = taken.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                taken.remove(&self.ip);
            }
        }
    }
}

/// An IPv4 client on a dual-stack listener counts as its IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_has_its_own_cap_and_slots_come_back() {
        let slots = AddressSlots::new(2);
        let a: IpAddr = "127.0.0.1".parse().expect("address");
        let b: IpAddr = "127.0.0.2".parse().expect("address");
        let a1 = slots.take(a).expect("first");
        let _a2 = slots.take(a).expect("second");
        assert!(slots.take(a).is_none(), "a third from the same address");
        let _b1 = slots.take(b).expect("another address is not affected");
        drop(a1);
        assert_eq!(slots.held(a), 1);
        assert!(slots.take(a).is_some(), "a slot given back is free again");
        let mapped: IpAddr = "::ffff:127.0.0.2".parse().expect("address");
        let _b2 = slots.take(mapped).expect("second of b, as IPv4-mapped");
        assert!(slots.take(b).is_none(), "the mapped address counts as b");
    }
}
