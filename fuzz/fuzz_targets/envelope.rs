//! Fuzzes an envelope from the relay, decrypted and decoded; see `tigress_fuzz::envelope`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tigress_fuzz::envelope(data));
