//! Fuzzes an envelope from the relay, decrypted and decoded; see `tigress_fuzz::envelope`.
//!
//! libfuzzer-sys installs a panic hook that aborts at once, before any `catch_unwind` can act.
//! The core catches a panic inside libsignal and rejects the input, as a device does, so this
//! target puts the default hook back. A panic that nothing catches still reaches
//! libfuzzer-sys's own `catch_unwind`, which aborts and reports the crash.

#![no_main]

libfuzzer_sys::fuzz_target!(
    init: {
        drop(std::panic::take_hook());
    },
    |data: &[u8]| tigress_fuzz::envelope(data)
);
