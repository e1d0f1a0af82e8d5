//! Fuzzes an invitation link; see `tigress_fuzz::share_link`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tigress_fuzz::share_link(data));
