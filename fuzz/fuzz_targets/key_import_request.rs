//! Fuzzes a key import request (X.509 certificate); see `tigress_fuzz::key_import_request`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tigress_fuzz::key_import_request(data));
