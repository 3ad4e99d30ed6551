//! Call-IDs, tags and branches. Whoever knows a dialog's Call-ID and tags can act in it, so
//! they come from a CSPRNG (ChaCha, `rand`'s `StdRng`) seeded from the operating system: an
//! outsider who sees some of them cannot work out the others. One 64-bit draw per tag or
//! branch keeps call set-up cheap (the generator refills a block at a time).

use std::fmt;

use rand::rngs::{StdRng, SysError, SysRng};
use rand::{Rng as _, SeedableRng as _, TryRng as _};

use crate::media::CallId;

/// What the generator starts from: 32 bytes from the OS in production ([`IdSeed::from_os`]),
/// a fixed number in tests ([`IdSeed::fixed`]). It prints as `IdSeed(..)`: the seed is as
/// secret as everything drawn from it.
#[derive(Clone)]
pub struct IdSeed([u8; 32]);

impl IdSeed {
    /// A seed from the operating system's random source.
    pub fn from_os() -> Result<IdSeed, SysError> {
        let mut seed = [0u8; 32];
        SysRng.try_fill_bytes(&mut seed)?;
        Ok(IdSeed(seed))
    }

    /// A fixed seed, for tests and simulations that must replay: predictable, so never for
    /// a service.
    pub fn fixed(seed: u64) -> IdSeed {
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&seed.to_le_bytes());
        IdSeed(bytes)
    }
}

impl fmt::Debug for IdSeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IdSeed(..)")
    }
}

/// The generator.
pub(super) struct Ids(StdRng);

impl Ids {
    pub(super) fn new(seed: &IdSeed) -> Ids {
        Ids(StdRng::from_seed(seed.0))
    }

    pub(super) fn next(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// A tag (ours on a leg): 64 random bits in hex.
    pub(super) fn tag(&mut self) -> String {
        format!("{:016x}", self.next())
    }

    /// A fresh branch (RFC 3261's `z9hG4bK` and 64 random bits).
    pub(super) fn branch(&mut self) -> String {
        format!("z9hG4bK{:016x}", self.next())
    }

    /// ivrpay's call id: `call_` and 20 base-32 characters (100 random bits).
    pub(super) fn call_id(&mut self) -> CallId {
        const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
        let (a, b) = (self.next(), self.next());
        let mut s = String::with_capacity(25);
        s.push_str("call_");
        for i in 0..20 {
            let bits = if i < 12 { a >> (i * 5) } else { b >> ((i - 12) * 5) };
            s.push(char::from(ALPHABET[(bits & 31) as usize]));
        }
        CallId(s)
    }

    /// The SIP Call-ID of an agent leg (96 random bits).
    pub(super) fn sip_call_id(&mut self) -> String {
        format!("{:016x}{:08x}@ivrpay", self.next(), self.next() as u32)
    }
}

impl fmt::Debug for Ids {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Ids(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fixed_seed_replays_and_different_seeds_differ() {
        let draw = |seed| {
            let mut ids = Ids::new(&IdSeed::fixed(seed));
            (ids.tag(), ids.call_id(), ids.sip_call_id())
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
        let (tag, call, sip) = draw(7);
        assert_eq!(tag.len(), 16);
        assert!(call.0.starts_with("call_") && call.0.len() == 25, "{call}");
        assert!(sip.ends_with("@ivrpay") && sip.len() == 24 + 7, "{sip}");
    }

    #[test]
    fn os_seeds_differ_and_do_not_print() {
        let (a, b) = (IdSeed::from_os().expect("OS random"), IdSeed::from_os().expect("again"));
        assert_ne!(a.0, b.0);
        assert_eq!(format!("{a:?}"), "IdSeed(..)");
    }

    /// SplitMix64, the generator this replaced, is a bijection of its state: one output gave
    /// away every later tag. ChaCha's outputs do not follow from each other that way: the
    /// next draw differs from what the inverted SplitMix step would predict.
    #[test]
    fn the_next_tag_does_not_follow_from_the_last() {
        fn splitmix_next(state: u64) -> (u64, u64) {
            let state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            (state, z ^ (z >> 31))
        }
        fn splitmix_state_of(output: u64) -> u64 {
            // Undo the final mix: each step is invertible.
            let unshift = |y: u64, s: u32| {
                let mut x = y;
                for _ in 0..64 / s {
                    x = y ^ (x >> s);
                }
                x
            };
            let mut z = unshift(output, 31);
            z = z.wrapping_mul(0x3196_42B2_D24D_8EC3); // inverse of 0x94D0_49BB_1331_11EB
            z = unshift(z, 27);
            z = z.wrapping_mul(0x96DE_1B17_3F11_9089); // inverse of 0xBF58_476D_1CE4_E5B9
            unshift(z, 30)
        }
        // The inversion works on SplitMix itself ...
        let (state, first) = splitmix_next(7);
        assert_eq!(splitmix_state_of(first), state);
        let predicted = splitmix_next(splitmix_state_of(first)).1;
        assert_eq!(predicted, splitmix_next(state).1);
        // ... and predicts nothing of ours.
        let mut ids = Ids::new(&IdSeed::fixed(7));
        for _ in 0..1000 {
            let seen = ids.next();
            let guess = splitmix_next(splitmix_state_of(seen)).1;
            assert_ne!(ids.next(), guess);
        }
    }
}
