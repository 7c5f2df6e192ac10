//! Arbitrary bytes as every body the agent channel accepts: parsing must
//! fail with an error, never panic; whatever parses must serialize and
//! parse back equal (the server stores and echoes these).
#![no_main]

use libfuzzer_sys::fuzz_target;
use patchfleet_protocol::{FactsOffer, Heartbeat, NodeState, RegisterRequest};
use serde::Serialize;
use serde::de::DeserializeOwned;

fn round_trip<T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug>(data: &[u8]) {
    if let Ok(v) = serde_json::from_slice::<T>(data) {
        let text = serde_json::to_vec(&v).expect("a parsed message serializes");
        let back: T = serde_json::from_slice(&text).expect("its own output parses");
        assert_eq!(back, v);
    }
}

fuzz_target!(|data: &[u8]| {
    round_trip::<RegisterRequest>(data);
    round_trip::<Heartbeat>(data);
    round_trip::<FactsOffer>(data);
    round_trip::<NodeState>(data);
});
