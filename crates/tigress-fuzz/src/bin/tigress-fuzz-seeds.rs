//! `tigress-fuzz-seeds OUT CREDENTIALS`: writes the seed inputs of every fuzz target into
//! `OUT/TARGET/`, with share messages carrying the `.cbor` documents in `CREDENTIALS`.

#![deny(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let arguments: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [out, credentials] = arguments.as_slice() else {
        eprintln!("usage: tigress-fuzz-seeds OUT CREDENTIALS");
        return ExitCode::from(2);
    };
    match tigress_fuzz::seeds::write_all(out, credentials) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("tigress-fuzz-seeds: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
