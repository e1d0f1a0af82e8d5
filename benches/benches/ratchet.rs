//! The ratchet hot path, side by side: raw libsignal over its in-memory store (`raw`), the
//! protocol core over its sled store (`core`) and the core behind the share message encoding
//! (`share`), for 256-byte, 4-KiB and 64-KiB payloads.
//!
//! Operations:
//! - `establish`: PQXDH from a bundle with fresh one-time prekeys, then the first message
//!   encrypted by the initiator and decrypted by the responder;
//! - `encrypt` and `decrypt`: one message in an established session;
//! - `round`: a message each way, so that both sides take a DH ratchet step;
//! - `flush`: writing one committed session change of the core to disk, which the SDK does
//!   once per batch before it sends or acknowledges.
//!
//! `cargo xtask bench` runs this and prints the table with the ratios.

#![allow(
    missing_docs,
    clippy::expect_used,
    reason = "benchmark harness: a failed fixture must stop the run"
)]

use std::cell::RefCell;
use std::hint::black_box;

use criterion::{BatchSize, BenchmarkId, Criterion, criterion_group, criterion_main};
use tigress_benches::ratchet::{CoreParty, Party, RawParty, Session, ShareParty, peer_address};

/// The payload sizes of every operation, in bytes.
const SIZES: [usize; 3] = [256, 4096, 65536];

/// Makes a new party of one kind.
type Factory<P> = fn() -> tigress_benches::ratchet::Result<P>;

/// Runs one benchmark for each store, one right after another, so that the three see the same
/// load on the machine.
macro_rules! side_by_side {
    ($bench:ident, $c:expr, $payload:expr) => {
        $bench($c, "raw", RawParty::new as Factory<RawParty>, $payload);
        $bench($c, "core", CoreParty::new as Factory<CoreParty>, $payload);
        $bench(
            $c,
            "share",
            ShareParty::new as Factory<ShareParty>,
            $payload,
        );
    };
}

fn ratchet(c: &mut Criterion) {
    for size in SIZES {
        let payload = vec![0x5a; size];
        side_by_side!(bench_establish, c, &payload);
        side_by_side!(bench_encrypt, c, &payload);
        side_by_side!(bench_decrypt, c, &payload);
        side_by_side!(bench_round, c, &payload);
    }
    bench_flush(c);
}

fn bench_establish<P: Party>(c: &mut Criterion, kind: &str, new: Factory<P>, payload: &[u8]) {
    let parties = RefCell::new((new().expect("alice"), new().expect("bob")));
    let mut next_peer = 1_000;

    c.benchmark_group("establish")
        .bench_function(BenchmarkId::new(kind, payload.len()), |b| {
            b.iter_batched(
                || {
                    next_peer += 2;
                    let (alice_address, bob_address) =
                        (peer_address(next_peer), peer_address(next_peer + 1));
                    let bundle = parties
                        .borrow_mut()
                        .1
                        .publish_bundle(&bob_address)
                        .expect("bundle");
                    (alice_address, bob_address, bundle)
                },
                |(alice_address, bob_address, bundle)| {
                    let (alice, bob) = &mut *parties.borrow_mut();
                    alice
                        .start_session(&bob_address, &bundle)
                        .expect("start session");
                    let first = alice.encrypt(&bob_address, payload).expect("encrypt");
                    bob.decrypt(&alice_address, &first).expect("decrypt")
                },
                BatchSize::SmallInput,
            );
        });
}

/// Establishes a session between two new parties for one benchmark, so that no benchmark
/// starts from the chain positions another left behind.
fn session<P: Party>(new: Factory<P>) -> RefCell<Session<P>> {
    let session = Session::establish(new().expect("alice"), new().expect("bob"));
    RefCell::new(session.expect("session"))
}

fn bench_encrypt<P: Party>(c: &mut Criterion, kind: &str, new: Factory<P>, payload: &[u8]) {
    let session = session(new);
    let id = BenchmarkId::new(kind, payload.len());

    c.benchmark_group("encrypt").bench_function(id, |b| {
        b.iter(|| {
            let session = &mut *session.borrow_mut();
            let bob = &session.bob_address;
            session
                .alice
                .encrypt(bob, black_box(payload))
                .expect("encrypt")
        });
    });
}

fn bench_decrypt<P: Party>(c: &mut Criterion, kind: &str, new: Factory<P>, payload: &[u8]) {
    let session = session(new);
    let id = BenchmarkId::new(kind, payload.len());

    c.benchmark_group("decrypt").bench_function(id, |b| {
        b.iter_batched(
            || {
                let session = &mut *session.borrow_mut();
                let bob = &session.bob_address;
                session.alice.encrypt(bob, payload).expect("encrypt")
            },
            |ciphertext| {
                let session = &mut *session.borrow_mut();
                let alice = &session.alice_address;
                session.bob.decrypt(alice, &ciphertext).expect("decrypt")
            },
            BatchSize::SmallInput,
        );
    });
}

fn bench_round<P: Party>(c: &mut Criterion, kind: &str, new: Factory<P>, payload: &[u8]) {
    let session = session(new);
    let id = BenchmarkId::new(kind, payload.len());

    c.benchmark_group("round").bench_function(id, |b| {
        b.iter(|| {
            let session = &mut *session.borrow_mut();
            session.round_trip(black_box(payload)).expect("round trip")
        });
    });
}

fn bench_flush(c: &mut Criterion) {
    let session = RefCell::new(
        Session::establish(
            CoreParty::new().expect("alice"),
            CoreParty::new().expect("bob"),
        )
        .expect("session"),
    );
    let payload = vec![0x5a; SIZES[0]];

    c.benchmark_group("flush")
        .bench_function(BenchmarkId::new("core", SIZES[0]), |b| {
            b.iter_batched(
                || {
                    let session = &mut *session.borrow_mut();
                    session
                        .alice
                        .encrypt(&session.bob_address, &payload)
                        .expect("encrypt")
                },
                |_| session.borrow().alice.flush().expect("flush"),
                BatchSize::PerIteration,
            );
        });
}

criterion_group!(benches, ratchet);
criterion_main!(benches);
