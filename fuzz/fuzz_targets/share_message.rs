//! Fuzzes a decrypted share message; see `tigress_fuzz::share_message`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tigress_fuzz::share_message(data));
