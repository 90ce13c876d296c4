// The vault bench's body, shared by `../vault.rs` (the system allocator) and
// `../vault_mimalloc.rs` (mimalloc), each of which names its criterion group in `GROUP`.

use std::hint::black_box;

use aes_gcm::aead::{Aead, KeyInit, OsRng, rand_core::RngCore};
use coffer::policy::{Context, Policy, Principal};
use coffer::record::{CustomerRecord, DEFAULT_SCHEMA_TOML, Schema};
use coffer::{Access, Coffer, MasterKey, OpenOptions};
use criterion::{BatchSize, Criterion, Throughput};

const POLICY: &str = include_str!("../../../examples/policies/accounting-firm.toml");
/// A lookup service that may search identity documents and contacts, under no rate limit.
const LOOKUP: &str = r#"
[roles.lookup_service]
[[rules]]
id = "lookup-search"
effect = "allow"
roles = ["lookup_service"]
actions = ["search"]
fields = ["id_documents[].*", "category:contact"]
purposes = ["bookkeeping"]

[roles.display_service]
[[rules]]
id = "display-contact"
effect = "allow"
roles = ["display_service"]
actions = ["read"]
fields = ["category:contact"]
purposes = ["bookkeeping"]

[[rules]]
id = "display-masked"
effect = "mask"
roles = ["display_service"]
actions = ["read"]
fields = ["category:contact"]
purposes = ["bookkeeping"]
"#;

fn typical(i: usize) -> CustomerRecord {
    CustomerRecord::from_json(&format!(
        r#"{{"id":"c-{i}","tenant":"firm-a","subject":"s-bench","kind":"individual","name":"张三",
            "id_documents":[{{"type":"cn_resident_id","number":"11010119800101007X","country":"CN"}}],
            "phones":["13800000000"],"emails":["zhang.san@example.com"],
            "addresses":["北京市东城区示例街道1号"],
            "bank_accounts":[{{"bank_name":"示例银行","account_type":"card","account_number":"6200000000000005"}}]}}"#
    ))
    .unwrap()
}

/// A store at `location` (a file, or a PostgreSQL URL) with the bench's schema and policy.
fn open_store(location: std::path::PathBuf) -> Coffer {
    // Three blind indexes: the account number's is switched off for this record shape.
    let schema =
        Schema::from_toml(&DEFAULT_SCHEMA_TOML.replace("index = \"last4\"\nindex_bits = 12\n", ""))
            .unwrap();
    let policy = Policy::from_toml(&format!("{POLICY}{LOOKUP}"), &schema).unwrap();
    Coffer::open_with(
        location,
        &MasterKey::generate().unwrap(),
        OpenOptions {
            schema,
            policy: Some(policy),
            ..Default::default()
        },
    )
    .unwrap()
}

/// An auditor with a ticket: reveals every field.
fn auditor() -> Access {
    Access {
        principal: Principal {
            id: "auditor-1".into(),
            tenant: "firm-a".into(),
            roles: vec!["auditor".into()],
            ..Default::default()
        },
        purpose: "statutory_audit".into(),
        context: Context {
            ticket: Some("AUD-1".into()),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// The same sealing and revealing on a PostgreSQL store, beside SQLite's (group `vault`), when
/// `COFFER_BENCH_POSTGRES` names a server (`postgres://…`; a fresh schema is made per run).
fn bench_postgres(c: &mut Criterion) {
    let Ok(url) = std::env::var("COFFER_BENCH_POSTGRES") else {
        return;
    };
    let sep = if url.contains('?') { '&' } else { '?' };
    let coffer = open_store(format!("{url}{sep}schema=bench_{}", std::process::id()).into());
    let access = auditor();
    let sample = coffer.seal(typical(0), "bench").unwrap();
    let mut g = c.benchmark_group(format!("{GROUP}_postgres"));
    g.throughput(Throughput::Elements(1000));
    g.sample_size(10);
    g.bench_function("seal_many_1000", |b| {
        b.iter_batched(
            || (0..1000).map(typical).collect::<Vec<_>>(),
            |rs| black_box(coffer.seal_many(rs, "bench").unwrap()),
            BatchSize::LargeInput,
        )
    });
    let envelopes: Vec<_> = coffer
        .seal_many((0..1000).map(typical).collect(), "bench")
        .unwrap()
        .into_iter()
        .map(Result::unwrap)
        .collect();
    g.bench_function("reveal_many_1000", |b| {
        b.iter(|| black_box(coffer.reveal_many(&envelopes, &access).unwrap()))
    });
    g.sample_size(50);
    g.throughput(Throughput::Elements(1));
    g.bench_function("reveal_one_durable", |b| {
        b.iter(|| black_box(coffer.reveal(&sample, &access).unwrap()))
    });
    g.finish();
}

fn bench(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("coffer-bench-vault-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let coffer = open_store(dir.join("bench.db"));
    let sample = coffer.seal(typical(0), "bench").unwrap();
    assert_eq!(sample.paths().len(), 10);
    assert_eq!(sample.index().len(), 3);
    let sealed = sample.key_versions().len();
    assert!(sealed >= 3);
    let access = auditor();
    let view = coffer.reveal(&sample, &access).unwrap();
    assert_eq!(
        view.revealed("bank_accounts[0].account_number"),
        Some("6200000000000005")
    );

    let mut g = c.benchmark_group(GROUP);
    g.throughput(Throughput::Elements(1));
    g.bench_function("seal_one_durable", |b| {
        b.iter_batched(
            || typical(1),
            |r| black_box(coffer.seal(r, "bench").unwrap()),
            BatchSize::SmallInput,
        )
    });
    g.throughput(Throughput::Elements(1000));
    g.sample_size(20);
    g.bench_function("seal_many_1000", |b| {
        b.iter_batched(
            || (0..1000).map(typical).collect::<Vec<_>>(),
            |rs| black_box(coffer.seal_many(rs, "bench").unwrap()),
            BatchSize::LargeInput,
        )
    });
    // Baseline: the six encrypted values, one AES-256-GCM call each with a random nonce.
    let record = typical(2);
    let values: Vec<String> = [
        "name",
        "id_documents[0].number",
        "phones[0]",
        "emails[0]",
        "addresses[0]",
        "bank_accounts[0].account_number",
    ]
    .iter()
    .map(|p| {
        record
            .fields()
            .into_iter()
            .find(|f| f.path.to_string() == *p)
            .unwrap()
            .value
            .to_owned()
    })
    .collect();
    let cipher = aes_gcm::Aes256Gcm::new(&aes_gcm::Aes256Gcm::generate_key(OsRng));
    g.bench_function("baseline_aes_gcm_1000", |b| {
        b.iter(|| {
            for _ in 0..1000 {
                for v in &values {
                    let mut nonce = [0u8; 12];
                    OsRng.fill_bytes(&mut nonce);
                    black_box(
                        cipher
                            .encrypt(aes_gcm::Nonce::from_slice(&nonce), v.as_bytes())
                            .unwrap(),
                    );
                }
            }
        })
    });
    // The floor: the cryptography a seal of this record cannot do without, through `ring`, and
    // nothing else. Per record: the six values and the five stored masked forms each sealed
    // (AES-256-GCM, their names as associated data), the three blind-index HMACs, and one HMAC
    // over as many bytes as the envelope's JSON (for the envelope MAC, whose message is shorter).
    // What a seal costs above this is validation, building the envelope, the audit entry and the
    // store.
    //
    // Standard masked forms of the five masked values, as long as the real ones.
    let masks: Vec<String> = ["张*", "138****0000", "z***@example.com", "北京市东城区***", "************0005"]
        .map(String::from)
        .to_vec();
    let floor_key = ring::aead::LessSafeKey::new(
        ring::aead::UnboundKey::new(&ring::aead::AES_256_GCM, &[7u8; 32]).unwrap(),
    );
    let index_key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &[8u8; 32]);
    let mac_key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &[9u8; 32]);
    let envelope_bytes = vec![0x5au8; sample.to_json().len()];
    let aad = [0x41u8; 64];
    // One value sealed under the counter's nonce: the ciphertext and tag, and the nonce.
    let floor_seal = |counter: u32, value: &str| {
        let mut nonce = [0u8; 12];
        nonce[8..].copy_from_slice(&counter.to_be_bytes());
        let mut buf = value.as_bytes().to_vec();
        floor_key
            .seal_in_place_append_tag(
                ring::aead::Nonce::assume_unique_for_key(nonce),
                ring::aead::Aad::from(&aad[..]),
                &mut buf,
            )
            .unwrap();
        (buf, nonce)
    };
    g.bench_function("baseline_ring_seal_crypto_1000", |b| {
        b.iter(|| {
            let mut counter = 0u32;
            for _ in 0..1000 {
                for v in values.iter().chain(&masks) {
                    black_box(floor_seal(counter, v));
                    counter = counter.wrapping_add(1);
                }
                for v in &values[1..4] {
                    black_box(ring::hmac::sign(&index_key, v.as_bytes()));
                }
                black_box(ring::hmac::sign(&mac_key, &envelope_bytes));
            }
        })
    });
    let envelopes: Vec<_> = coffer
        .seal_many((0..1000).map(typical).collect(), "bench")
        .unwrap()
        .into_iter()
        .map(Result::unwrap)
        .collect();
    g.bench_function("reveal_many_1000", |b| {
        b.iter(|| black_box(coffer.reveal_many(&envelopes, &access).unwrap()))
    });
    // The same work on one envelope a thousand times over: its memory stays in the cache, so
    // the difference from `reveal_many_1000` is what reading a thousand envelopes' scattered
    // allocations (some seventy each: paths, ciphertexts, categories, tokens) costs.
    let same: Vec<&coffer::Envelope> = (0..1000).map(|_| &envelopes[0]).collect();
    g.bench_function("reveal_many_1000_same", |b| {
        b.iter(|| black_box(coffer.reveal_many(&same, &access).unwrap()))
    });
    // The reveal's floor, as the seal's: the envelope MAC checked and the six values opened,
    // through `ring`, and nothing else (no policy, no view, no audit).
    let opened: Vec<(Vec<u8>, [u8; 12])> = values
        .iter()
        .enumerate()
        .map(|(i, v)| floor_seal(i as u32, v))
        .collect();
    let envelope_mac = ring::hmac::sign(&mac_key, &envelope_bytes);
    g.bench_function("baseline_ring_reveal_crypto_1000", |b| {
        b.iter(|| {
            for _ in 0..1000 {
                ring::hmac::verify(&mac_key, &envelope_bytes, envelope_mac.as_ref()).unwrap();
                for (sealed, nonce) in &opened {
                    let mut buf = sealed.clone();
                    let plain = floor_key
                        .open_in_place(
                            ring::aead::Nonce::assume_unique_for_key(*nonce),
                            ring::aead::Aad::from(&aad[..]),
                            &mut buf,
                        )
                        .unwrap();
                    black_box(String::from_utf8(plain.to_vec()).unwrap());
                }
            }
        })
    });
    // The Python bench's shape (benches/python/bench_vault.py): every record its own customer,
    // so every seal makes three data keys (in the batch's one transaction) and every reveal
    // reads the keys of a thousand subjects (from the key cache once it holds them).
    let fresh = std::sync::atomic::AtomicUsize::new(0);
    let new_customers = || {
        (0..1000)
            .map(|i| {
                let k = fresh.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let mut r = typical(i);
                r.subject = Some(format!("s-new-{k}"));
                r
            })
            .collect::<Vec<_>>()
    };
    g.bench_function("seal_many_1000_new_customers", |b| {
        b.iter_batched(
            new_customers,
            |rs| black_box(coffer.seal_many(rs, "bench").unwrap()),
            BatchSize::LargeInput,
        )
    });
    let customers: Vec<_> = coffer
        .seal_many(new_customers(), "bench")
        .unwrap()
        .into_iter()
        .map(Result::unwrap)
        .collect();
    g.bench_function("reveal_many_1000_new_customers", |b| {
        b.iter(|| black_box(coffer.reveal_many(&customers, &access).unwrap()))
    });
    // A list screen: the contact fields masked (phones and e-mails from the stored masked
    // forms, sealed since envelope version 2; addresses masked afresh), nothing revealed.
    let display = Access {
        principal: Principal {
            id: "display-1".into(),
            tenant: "firm-a".into(),
            roles: vec!["display_service".into()],
            ..Default::default()
        },
        purpose: "bookkeeping".into(),
        ..Default::default()
    };
    let masked = coffer.reveal(&sample, &display).unwrap();
    assert_eq!(masked.fields["phones[0]"].state(), "masked");
    g.bench_function("reveal_many_1000_masked", |b| {
        b.iter(|| black_box(coffer.reveal_many(&envelopes, &display).unwrap()))
    });
    g.sample_size(100);
    g.throughput(Throughput::Elements(1));
    g.bench_function("reveal_one_durable", |b| {
        b.iter(|| black_box(coffer.reveal(&sample, &access).unwrap()))
    });
    // Search is an audited access: one durable transaction per call, so single searches cost
    // a commit and batches share one. A lookup service without a rate limit searches here.
    let searcher = Access {
        principal: Principal {
            id: "lookup-1".into(),
            tenant: "firm-a".into(),
            roles: vec!["lookup_service".into()],
            ..Default::default()
        },
        purpose: "bookkeeping".into(),
        ..Default::default()
    };
    g.bench_function("search_one_durable", |b| {
        b.iter(|| {
            black_box(
                coffer
                    .search(
                        &searcher,
                        "id_documents[].number",
                        black_box("11010119800101007X"),
                    )
                    .unwrap(),
            )
        })
    });
    let ids: Vec<String> = (0..1000)
        .map(|i| format!("1101011980{:04}{:03}X", 101 + i % 1000, i % 997))
        .collect();
    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    g.throughput(Throughput::Elements(1000));
    g.bench_function("search_many_1000", |b| {
        b.iter(|| {
            black_box(
                coffer
                    .search_many(&searcher, "id_documents[].number", black_box(&id_refs))
                    .unwrap(),
            )
        })
    });
    g.finish();
    drop(coffer);
    let _ = std::fs::remove_dir_all(&dir);
}
