//! Config: `Config::from_toml_str` then `validate`, and for a valid config
//! of a small network, what the rest of fsnn does with it: the TOML round
//! trip that checkpoints rely on, `Network::build`, and a model file
//! written and loaded back.
#![no_main]

use std::path::Path;

use fsnn::checkpoint;
use fsnn::checkpoint::container::Container;
use fsnn::config::Config;
use fsnn::model::Network;
use fsnn_fuzz::{Scratch, worth_building};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let origin = Path::new("fuzz.toml");
    let Ok(cfg) = Config::from_toml_str(text, origin) else {
        return;
    };
    if cfg.validate().is_err() {
        return;
    }

    // A valid config survives `to_toml` (checkpoints store it that way).
    let again = Config::from_toml_str(&cfg.to_toml(), origin)
        .unwrap_or_else(|e| panic!("to_toml of a valid config does not parse: {e}"));
    assert_eq!(again, cfg, "to_toml round trip changed the config");
    again
        .validate()
        .expect("the round-tripped config validates");

    // `Network::build` allocates what the config asks for: small networks
    // only, and those `validate` should have rejected (see `worth_building`).
    if !worth_building(&cfg) {
        return;
    }
    let model = Network::build(&cfg);
    let bytes = checkpoint::to_safetensors(&model, &cfg);
    Container::from_bytes(&bytes, origin).expect("a fresh model file verifies");
    let file = Scratch::new("config", &bytes);
    let (loaded, stored) = checkpoint::load(file.path()).expect("a fresh model file loads");
    assert_eq!(stored, cfg);
    assert_eq!(loaded.widths(), model.widths());
});
