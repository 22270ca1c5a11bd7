//! Checkpoints: `Container::from_bytes`, `checkpoint::load` (model file)
//! and `checkpoint::state::load` (training state) on arbitrary bytes.
//!
//! The first input byte picks the mode. Even: the rest goes to the three
//! entry points as it is (a mutation almost always ends at the CRC-32).
//! Odd: the rest is decoded as safetensors without the CRC check and
//! re-sealed with a fresh checksum, so that the fuzzer reaches what comes
//! after it: the format, the stored config, tensor names and shapes, the
//! state's metadata.
#![no_main]

use std::path::Path;

use fsnn::checkpoint;
use fsnn::checkpoint::container::Container;
use fsnn_fuzz::{Scratch, unsealed, worth_loading};
use libfuzzer_sys::fuzz_target;

fn load_all(bytes: &[u8]) {
    let name = Path::new("fuzz.safetensors");
    let parsed = Container::from_bytes(bytes, name);
    if let Ok(c) = &parsed {
        // What verified re-serialises to a file that verifies to the same.
        let again = Container::from_bytes(&c.to_bytes(), name).expect("re-serialised verifies");
        assert_eq!(again.to_bytes(), c.to_bytes());
        if !worth_loading(c) {
            return;
        }
    }
    let file = Scratch::new("checkpoint", bytes);
    let _ = checkpoint::load(file.path());
    let _ = checkpoint::state::load(file.path());
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        load_all(rest);
    } else if let Some(c) = unsealed(rest) {
        load_all(&c.to_bytes());
    }
});
