//! Cryptography, all of it from `ring`. This module knows nothing of policies or records.
//!
//! - AES-256-GCM for fields and wrapped keys; the caller never chooses a nonce.
//! - HKDF-SHA256 to derive record keys and index keys.
//! - HMAC-SHA256 for blind indexes, envelope MACs and the audit chain.
//! - Ed25519 for checkpoints and destruction certificates.
//!
//! Key bytes live in [`SecretKey`] (wiped on drop, never printed). Every failed decryption or
//! verification is the same opaque integrity error.

mod master;

use std::fmt;

use base64::Engine as _;
use ring::{aead, digest, hkdf, hmac, rand, signature};
use zeroize::Zeroizing;

pub use master::MasterKey;

use crate::error::{Error, Result};

/// A 256-bit secret key. Wiped on drop; `Debug` prints `SecretKey([redacted])`.
#[derive(Clone)]
pub struct SecretKey(Zeroizing<[u8; 32]>);

impl SecretKey {
    /// A fresh random key from the operating system's generator.
    pub fn generate() -> Result<SecretKey> {
        let mut k = Zeroizing::new([0u8; 32]);
        fill_random(k.as_mut())?;
        Ok(SecretKey(k))
    }

    /// A fresh random key from a batch's random bytes.
    pub(crate) fn generate_from(pool: &mut RandomBatch) -> Result<SecretKey> {
        let mut k = Zeroizing::new([0u8; 32]);
        pool.fill(k.as_mut())?;
        Ok(SecretKey(k))
    }

    /// A key from exactly 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<SecretKey> {
        let arr: [u8; 32] = bytes.try_into().map_err(|_| Error::InvalidArgument {
            name: "key",
            reason: format!("a key is 32 bytes, not {}", bytes.len()),
        })?;
        Ok(SecretKey(Zeroizing::new(arr)))
    }

    pub(crate) fn expose(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey([redacted])")
    }
}

fn rng() -> &'static rand::SystemRandom {
    static RNG: std::sync::OnceLock<rand::SystemRandom> = std::sync::OnceLock::new();
    RNG.get_or_init(rand::SystemRandom::new)
}

/// Fills `buf` from the operating system's random generator.
pub(crate) fn fill_random(buf: &mut [u8]) -> Result<()> {
    use rand::SecureRandom;
    rng().fill(buf).map_err(|_| Error::Internal {
        message: "the system random generator failed".into(),
    })
}

/// Random bytes for one batch, drawn from the operating system in one call and handed out in
/// pieces, each wiped from the pool as it is taken (a `getrandom` call per key, nonce and salt
/// was ≈ 5% of sealing new customers). A pool lives only as long as the batch call that made
/// it, so no process made by `fork` can hand out the same bytes again.
pub(crate) struct RandomBatch {
    bytes: Zeroizing<Vec<u8>>,
    at: usize,
}

impl RandomBatch {
    /// `len` random bytes.
    pub(crate) fn new(len: usize) -> Result<RandomBatch> {
        let mut bytes = Zeroizing::new(vec![0u8; len]);
        fill_random(&mut bytes)?;
        Ok(RandomBatch { bytes, at: 0 })
    }

    /// Fills `out` with the next bytes; an error (never reused bytes) if too few are left.
    pub(crate) fn fill(&mut self, out: &mut [u8]) -> Result<()> {
        let end = self.at + out.len();
        let taken = self
            .bytes
            .get_mut(self.at..end)
            .ok_or_else(|| Error::Internal {
                message: "a batch ran out of random bytes".into(),
            })?;
        out.copy_from_slice(taken);
        zeroize::Zeroize::zeroize(taken);
        self.at = end;
        Ok(())
    }

    /// The next `N` bytes (for values that are not secret: nonces, salts).
    pub(crate) fn take<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        self.fill(&mut out)?;
        Ok(out)
    }
}

/// The one error for every failed decryption, MAC or signature check.
pub(crate) fn integrity(what: &str) -> Error {
    Error::Integrity {
        what: what.to_owned(),
    }
}

/// SHA-256 of a file's bytes, read in 64 KiB pieces, as lower-case hexadecimal.
pub fn sha256_file_hex(path: &std::path::Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut ctx = digest::Context::new(&digest::SHA256);
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        ctx.update(&buf[..n]);
    }
    Ok(hex(ctx.finish().as_ref()))
}

/// SHA-256 of `data`, as 64 lower-case hexadecimal characters.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(digest::digest(&digest::SHA256, data).as_ref())
}

/// Lower-case hexadecimal.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        out.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
    out
}

/// Decodes lower- or upper-case hexadecimal.
pub fn from_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// URL-safe base64 without padding, the encoding of every binary value in an envelope.
pub fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes URL-safe base64 without padding.
pub fn from_b64url(text: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .ok()
}

/// Length-prefixed concatenation, so that no two lists of parts encode alike
/// (`("ab", "c")` and `("a", "bc")` differ).
pub(crate) fn lp(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(parts.iter().map(|p| p.len() + 4).sum());
    for p in parts {
        out.extend_from_slice(&u32::try_from(p.len()).unwrap_or(u32::MAX).to_be_bytes());
        out.extend_from_slice(p);
    }
    out
}

/// Hands [`lp`] of `parts` to `f`, written on the stack when it is short (an AAD of a field
/// is, and a heap buffer for each of a record's dozen items added up).
pub(crate) fn with_lp<R>(parts: &[&[u8]], f: impl FnOnce(&[u8]) -> R) -> R {
    const STACK: usize = 512;
    let len: usize = parts.iter().map(|p| p.len() + 4).sum();
    if len > STACK {
        return f(&lp(parts));
    }
    let mut buf = [0u8; STACK];
    let mut at = 0;
    for p in parts {
        buf[at..at + 4].copy_from_slice(&u32::try_from(p.len()).unwrap_or(u32::MAX).to_be_bytes());
        buf[at + 4..at + 4 + p.len()].copy_from_slice(p);
        at += 4 + p.len();
    }
    f(&buf[..at])
}

struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// HKDF-SHA256: a 32-byte key from `secret`, `salt` and the length-prefixed `info` parts.
pub(crate) fn hkdf32(secret: &[u8], salt: &[u8], info: &[&[u8]]) -> Result<SecretKey> {
    let [key] = hkdf32_each(secret, salt, [info])?;
    Ok(key)
}

/// HKDF-SHA256 of one `secret` and `salt` for each of `infos`: the same keys as [`hkdf32`]
/// gives one by one, with the extract step (two of the HMACs) done once for all of them.
pub(crate) fn hkdf32_each<const N: usize>(
    secret: &[u8],
    salt: &[u8],
    infos: [&[&[u8]]; N],
) -> Result<[SecretKey; N]> {
    // The empty salt (version 3's ciphers) is the same HMAC key every time: prepared once.
    static NO_SALT: std::sync::LazyLock<hkdf::Salt> =
        std::sync::LazyLock::new(|| hkdf::Salt::new(hkdf::HKDF_SHA256, &[]));
    let prk = if salt.is_empty() {
        NO_SALT.extract(secret)
    } else {
        hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(secret)
    };
    let mut out = std::array::from_fn(|_| SecretKey(Zeroizing::new([0u8; 32])));
    for (key, info) in out.iter_mut().zip(infos) {
        let info = lp(info);
        let info_parts = [info.as_slice()];
        let okm = prk
            .expand(&info_parts, Len(32))
            .map_err(|_| Error::Internal {
                message: "HKDF expand".into(),
            })?;
        okm.fill(key.0.as_mut()).map_err(|_| Error::Internal {
            message: "HKDF fill".into(),
        })?;
    }
    Ok(out)
}

/// HMAC-SHA256 over the concatenation of `parts`.
pub(crate) fn hmac_sha256(key: &SecretKey, parts: &[&[u8]]) -> [u8; 32] {
    let k = hmac::Key::new(hmac::HMAC_SHA256, key.expose());
    let mut ctx = hmac::Context::with_key(&k);
    for p in parts {
        ctx.update(p);
    }
    let tag = ctx.sign();
    let mut out = [0u8; 32];
    out.copy_from_slice(tag.as_ref());
    out
}

/// Whether `tag` is the HMAC-SHA256 of the concatenated `parts`, compared in constant time by
/// `ring`.
pub(crate) fn hmac_verify(key: &SecretKey, parts: &[&[u8]], tag: &[u8]) -> bool {
    let k = hmac::Key::new(hmac::HMAC_SHA256, key.expose());
    hmac::verify(&k, &parts.concat(), tag).is_ok()
}

/// An HMAC-SHA256 key kept with its prepared inner and outer states, for keys that MAC many
/// messages (envelopes, audit entries): each MAC then hashes only its message. Derefs to its
/// [`SecretKey`]. (`ring` does not wipe the prepared states; they live as long as the key.)
pub(crate) struct MacKey {
    secret: SecretKey,
    prepared: hmac::Key,
}

impl MacKey {
    pub(crate) fn new(secret: SecretKey) -> MacKey {
        let prepared = hmac::Key::new(hmac::HMAC_SHA256, secret.expose());
        MacKey { secret, prepared }
    }

    /// A MAC computed over the message `feed` writes.
    pub(crate) fn sign_with(&self, feed: impl FnOnce(&mut MacWriter)) -> [u8; 32] {
        let mut w = MacWriter {
            ctx: hmac::Context::with_key(&self.prepared),
            buf: Chunk {
                bytes: [0; MacWriter::CHUNK],
                len: 0,
                used: 0,
            },
        };
        feed(&mut w);
        w.ctx.update(&w.buf.bytes[..w.buf.len]);
        let mut out = [0u8; 32];
        out.copy_from_slice(w.ctx.sign().as_ref());
        out
    }

    /// The HMAC-SHA256 of the concatenated `parts`, fed to the MAC as they are (a few parts
    /// need no gathering: the chunk of [`sign_with`](Self::sign_with), set up and wiped, was
    /// most of a blind-index token's cost).
    pub(crate) fn sign(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut ctx = hmac::Context::with_key(&self.prepared);
        for p in parts {
            ctx.update(p);
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.sign().as_ref());
        out
    }

    /// Whether `tag` is the MAC of the message `feed` writes, compared in constant time.
    pub(crate) fn verify_with(&self, feed: impl FnOnce(&mut MacWriter), tag: &[u8]) -> bool {
        let mac = self.sign_with(feed);
        subtle::ConstantTimeEq::ct_eq(&mac[..], tag).into()
    }
}

impl std::ops::Deref for MacKey {
    type Target = SecretKey;
    fn deref(&self) -> &SecretKey {
        &self.secret
    }
}

impl fmt::Debug for MacKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MacKey([redacted])")
    }
}

/// Where a MAC's message is written, piece by piece: gathered in chunks (a hash update per
/// small piece costs more than the copy) that are wiped when done, since a message can hold
/// clear fields.
pub(crate) struct MacWriter {
    ctx: hmac::Context,
    buf: Chunk,
}

/// A message's chunk, on the stack (no allocation per MAC): filled in place, never moved once
/// written, and only the part ever filled is wiped when done.
struct Chunk {
    bytes: [u8; MacWriter::CHUNK],
    /// How much of `bytes` holds the message's pending part.
    len: usize,
    /// The most of `bytes` filled before a flush.
    used: usize,
}

impl Drop for Chunk {
    fn drop(&mut self) {
        let used = self.used.max(self.len);
        zeroize::Zeroize::zeroize(&mut self.bytes[..used]);
    }
}

impl MacWriter {
    const CHUNK: usize = 1024;

    pub(crate) fn write(&mut self, bytes: &[u8]) {
        let buf = &mut self.buf;
        if buf.len + bytes.len() > Self::CHUNK {
            self.ctx.update(&buf.bytes[..buf.len]);
            buf.used = buf.used.max(buf.len);
            buf.len = 0;
        }
        if bytes.len() >= Self::CHUNK {
            self.ctx.update(bytes);
        } else {
            buf.bytes[buf.len..buf.len + bytes.len()].copy_from_slice(bytes);
            buf.len += bytes.len();
        }
    }

    /// `bytes` length-prefixed: a 4-byte big-endian length, then the bytes (as [`lp`]).
    pub(crate) fn put(&mut self, bytes: &[u8]) {
        self.write(&u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_be_bytes());
        self.write(bytes);
    }
}

fn aead_key(key: &SecretKey) -> Result<aead::LessSafeKey> {
    aead::UnboundKey::new(&aead::AES_256_GCM, key.expose())
        .map(aead::LessSafeKey::new)
        .map_err(|_| Error::Internal {
            message: "AES-256-GCM key".into(),
        })
}

/// A 96-bit nonce from a counter: unique as long as each key is used for one counter sequence,
/// which holds because every seal derives fresh keys from a fresh salt.
pub(crate) fn counter_nonce(counter: u32) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[8..].copy_from_slice(&counter.to_be_bytes());
    n
}

/// A 96-bit nonce from a random per-seal `iv` and a counter (as TLS 1.3 does): the counter,
/// big-endian, XORed into the IV's last four bytes. Unique under a key used by many seals as
/// long as no two seals draw IVs within a counter's reach of each other: 2^-64 and less for
/// a key's lifetime of seals (envelope version 3, whose field keys are per data key).
pub(crate) fn iv_nonce(iv: &[u8; 12], counter: u32) -> [u8; 12] {
    let mut n = *iv;
    for (b, c) in n[8..].iter_mut().zip(counter.to_be_bytes()) {
        *b ^= c;
    }
    n
}

/// Zeroes the vector registers xmm0–xmm2 before `ring` runs AES-256-GCM, so that valgrind can
/// follow it. On x86-64 `ring` hashes short inputs with `gcm_ghash_avx`, whose short path
/// starts its three accumulators as copies of xmm0–xmm2 (whatever the caller left there) and
/// then XORs each with its own copy: zero, so the tag is right whatever the registers held,
/// but memcheck cannot tell a register XORed with its copy from one XORed with anything else.
/// When those registers held a copy of some uninitialised bytes (SQLite's statement arrays
/// pass through them), memcheck marked the tag undefined, and reported it much later wherever
/// the tag went: in SQLite's write-ahead log, in `ring`'s tag comparison. Which code ran last
/// before a seal decided it, so an unrelated refactor could turn the C tests under valgrind
/// red. The cost is three register clears per seal or open; nothing else in the process reads
/// these registers' old contents.
#[allow(unsafe_code)]
#[inline(always)]
fn clear_ghash_scratch() {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: three SSE instructions (baseline on x86-64) that write only the registers named
    // as outputs; no memory, no stack, no flags.
    unsafe {
        std::arch::asm!(
            "xorps xmm0, xmm0",
            "xorps xmm1, xmm1",
            "xorps xmm2, xmm2",
            out("xmm0") _,
            out("xmm1") _,
            out("xmm2") _,
            options(nomem, nostack, preserves_flags),
        );
    }
}

/// An AES-256-GCM key with its key schedule, for sealing many fields under one key.
pub(crate) struct AeadKey(aead::LessSafeKey);

impl AeadKey {
    pub(crate) fn new(key: &SecretKey) -> Result<AeadKey> {
        aead_key(key).map(AeadKey)
    }

    /// AES-256-GCM: ciphertext with its 16-byte tag appended.
    pub(crate) fn seal(&self, nonce: [u8; 12], aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
        let mut buf = Vec::with_capacity(plaintext.len() + 16);
        buf.extend_from_slice(plaintext);
        clear_ghash_scratch();
        self.0
            .seal_in_place_append_tag(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::from(aad),
                &mut buf,
            )
            .map_err(|_| Error::Internal {
                message: "AES-256-GCM seal".into(),
            })?;
        Ok(buf)
    }

    /// [`wrap`] under this key, prepared once (the keyring's KEKs wrap every new data key).
    pub(crate) fn wrap(&self, aad: &[u8], key: &[u8]) -> Result<Vec<u8>> {
        let mut nonce = [0u8; 12];
        fill_random(&mut nonce)?;
        self.wrap_with(nonce, aad, key)
    }

    /// [`AeadKey::wrap`] with a random `nonce` the caller drew (from a [`RandomBatch`]).
    pub(crate) fn wrap_with(&self, nonce: [u8; 12], aad: &[u8], key: &[u8]) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(12 + key.len() + 16);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(key);
        clear_ghash_scratch();
        self.0
            .seal_in_place_separate_tag(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::from(aad),
                &mut out[12..],
            )
            .map(|tag| out.extend_from_slice(tag.as_ref()))
            .map_err(|_| Error::Internal {
                message: "AES-256-GCM seal".into(),
            })?;
        Ok(out)
    }

    /// [`unwrap`] under this key.
    pub(crate) fn unwrap(
        &self,
        aad: &[u8],
        wrapped: &[u8],
        what: &str,
    ) -> Result<Zeroizing<Vec<u8>>> {
        if wrapped.len() < 12 + 16 {
            return Err(integrity(what));
        }
        let nonce: [u8; 12] = wrapped[..12].try_into().map_err(|_| integrity(what))?;
        self.open(nonce, aad, &wrapped[12..], what)
    }

    /// Opens what [`AeadKey::seal`] produced; any failure is an integrity error naming `what`.
    pub(crate) fn open(
        &self,
        nonce: [u8; 12],
        aad: &[u8],
        sealed: &[u8],
        what: &str,
    ) -> Result<Zeroizing<Vec<u8>>> {
        let mut buf = Zeroizing::new(sealed.to_vec());
        clear_ghash_scratch();
        let len = self
            .0
            .open_in_place(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::from(aad),
                &mut buf,
            )
            .map_err(|_| integrity(what))?
            .len();
        buf.truncate(len);
        Ok(buf)
    }
}

/// Wraps a key under a key-encryption key: a random nonce, then the sealed key. The associated
/// data names the wrapped key (kind, ids, version), so a wrapped key moved elsewhere fails.
pub(crate) fn wrap(kek: &SecretKey, aad: &[u8], key: &[u8]) -> Result<Vec<u8>> {
    AeadKey::new(kek)?.wrap(aad, key)
}

/// Unwraps what [`wrap`] produced.
pub(crate) fn unwrap(
    kek: &SecretKey,
    aad: &[u8],
    wrapped: &[u8],
    what: &str,
) -> Result<Zeroizing<Vec<u8>>> {
    AeadKey::new(kek)?.unwrap(aad, wrapped, what)
}

/// An Ed25519 signing key, held as its PKCS#8 document (wiped on drop).
pub(crate) struct SigningKey {
    pkcs8: Zeroizing<Vec<u8>>,
    pair: signature::Ed25519KeyPair,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey([redacted])")
    }
}

impl SigningKey {
    pub(crate) fn generate() -> Result<SigningKey> {
        let doc =
            signature::Ed25519KeyPair::generate_pkcs8(rng()).map_err(|_| Error::Internal {
                message: "Ed25519 key generation".into(),
            })?;
        Self::from_pkcs8(doc.as_ref())
    }

    pub(crate) fn from_pkcs8(bytes: &[u8]) -> Result<SigningKey> {
        let pair =
            signature::Ed25519KeyPair::from_pkcs8(bytes).map_err(|_| integrity("signing key"))?;
        Ok(SigningKey {
            pkcs8: Zeroizing::new(bytes.to_vec()),
            pair,
        })
    }

    pub(crate) fn pkcs8(&self) -> &[u8] {
        &self.pkcs8
    }

    pub(crate) fn public_key(&self) -> Vec<u8> {
        use signature::KeyPair;
        self.pair.public_key().as_ref().to_vec()
    }

    pub(crate) fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.pair.sign(message).as_ref().to_vec()
    }
}

/// Verifies an Ed25519 signature with a public key (32 bytes).
pub fn verify_signature(public_key: &[u8], message: &[u8], sig: &[u8]) -> Result<()> {
    signature::UnparsedPublicKey::new(&signature::ED25519, public_key)
        .verify(message, sig)
        .map_err(|_| integrity("signature"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_known_answer() {
        // FIPS 180-2, appendix B.1.
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn hkdf_known_answer_and_one_extract_for_many() {
        // RFC 5869, test case 3 (no salt, no info): the first 32 bytes of its OKM.
        let ikm = [0x0bu8; 22];
        assert_eq!(
            hex(hkdf32(&ikm, &[], &[]).unwrap().expose()),
            "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d"
        );
        // Sharing the extract step changes no key.
        let [a, b] = hkdf32_each(&ikm, b"salt", [&[b"coffer/v3/field"], &[b"x", b"y"]]).unwrap();
        assert_eq!(
            a.expose(),
            hkdf32(&ikm, b"salt", &[b"coffer/v3/field"])
                .unwrap()
                .expose()
        );
        assert_eq!(
            b.expose(),
            hkdf32(&ikm, b"salt", &[b"x", b"y"]).unwrap().expose()
        );
        assert_ne!(a.expose(), b.expose());
    }

    #[test]
    fn mac_writer_gives_the_mac_of_the_whole_message_however_it_is_cut() {
        let key = MacKey::new(SecretKey::from_bytes(&[7u8; 32]).unwrap());
        let message: Vec<u8> = (0..3 * MacWriter::CHUNK + 17).map(|i| i as u8).collect();
        let whole = hmac_sha256(&key, &[&message]);
        // Pieces smaller than, equal to and larger than a chunk, and pieces that end exactly
        // on a chunk's boundary.
        for cut in [1, 63, 4095, 4096, 4097, 9000] {
            let mac = key.sign_with(|w| {
                for piece in message.chunks(cut) {
                    w.write(piece);
                }
            });
            assert_eq!(mac, whole, "pieces of {cut} bytes");
        }
        assert!(key.verify_with(|w| w.write(&message), &whole));
        assert!(!key.verify_with(|w| w.write(&message[1..]), &whole));
    }

    #[test]
    fn mac_writer_puts_pieces_as_lp_writes_them() {
        let key = MacKey::new(SecretKey::from_bytes(&[7u8; 32]).unwrap());
        // Empty pieces, small ones, ones whose prefix or bytes cross a chunk's end, one that
        // fills a chunk exactly with its prefix, and ones larger than a chunk.
        let c = MacWriter::CHUNK;
        let sizes = [
            0,
            1,
            4,
            17,
            c - 5,
            c - 4,
            c - 3,
            3,
            c,
            c + 1,
            2 * c + 9,
            0,
            250,
            7,
        ];
        let pieces: Vec<Vec<u8>> = sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| (0..n).map(|j| (i * 31 + j) as u8).collect())
            .collect();
        for start in 0..pieces.len() {
            let parts: Vec<&[u8]> = pieces[start..].iter().map(Vec::as_slice).collect();
            let want = hmac_sha256(&key, &[&lp(&parts)]);
            let got = key.sign_with(|w| {
                for p in &parts {
                    w.put(p);
                }
            });
            assert_eq!(got, want, "pieces from {start}");
        }
    }

    #[test]
    fn hmac_known_answer() {
        // RFC 4231, test case 2 (key "Jefe"), with the key zero-padded to 32 bytes as HMAC does.
        let mut k = [0u8; 32];
        k[..4].copy_from_slice(b"Jefe");
        let mac = hmac_sha256(
            &SecretKey::from_bytes(&k).unwrap(),
            &[b"what do ya want ", b"for nothing?"],
        );
        assert_eq!(
            hex(&mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn a_random_batch_hands_out_each_byte_once_and_wipes_it() {
        let mut pool = RandomBatch::new(16 * 3 + 32).unwrap();
        let a: [u8; 16] = pool.take().unwrap();
        let b: [u8; 16] = pool.take().unwrap();
        let c: [u8; 16] = pool.take().unwrap();
        assert!(a != b && b != c && a != c);
        let key = SecretKey::generate_from(&mut pool).unwrap();
        assert_ne!(key.expose(), &[0u8; 32]);
        assert!(pool.bytes.iter().all(|&x| x == 0), "taken bytes are wiped");
        assert_eq!(
            pool.take::<1>().unwrap_err().kind(),
            crate::ErrorKind::Internal
        );
        assert!(RandomBatch::new(0).unwrap().take::<12>().is_err());
    }

    #[test]
    fn aead_round_trip_and_tamper() {
        let k = AeadKey::new(&SecretKey::generate().unwrap()).unwrap();
        let ct = k.seal(counter_nonce(3), b"aad", b"13800000000").unwrap();
        assert_eq!(
            &k.open(counter_nonce(3), b"aad", &ct, "x").unwrap()[..],
            b"13800000000"
        );
        assert!(k.open(counter_nonce(4), b"aad", &ct, "x").is_err());
        assert!(k.open(counter_nonce(3), b"aae", &ct, "x").is_err());
        let mut bad = ct.clone();
        bad[0] ^= 1;
        assert!(k.open(counter_nonce(3), b"aad", &bad, "x").is_err());
        let other = AeadKey::new(&SecretKey::generate().unwrap()).unwrap();
        assert_eq!(
            other
                .open(counter_nonce(3), b"aad", &ct, "field")
                .unwrap_err()
                .kind(),
            crate::ErrorKind::Integrity
        );
    }

    #[test]
    fn wrapped_keys_open_only_under_their_kek_and_names() {
        let secret = SecretKey::generate().unwrap();
        let kek = AeadKey::new(&secret).unwrap();
        let key = [9u8; 32];
        // The prepared KEK and the one-off functions write and read the same format: nonce,
        // ciphertext, tag.
        let w = kek.wrap(b"names", &key).unwrap();
        assert_eq!(w.len(), 12 + 32 + 16);
        assert_eq!(&unwrap(&secret, b"names", &w, "k").unwrap()[..], &key);
        let w2 = wrap(&secret, b"names", &key).unwrap();
        assert_eq!(&kek.unwrap(b"names", &w2, "k").unwrap()[..], &key);
        assert_ne!(w[..12], w2[..12], "a fresh nonce per wrap");
        assert!(kek.unwrap(b"other names", &w, "k").is_err());
        let mut bad = w.clone();
        bad[20] ^= 1;
        assert!(kek.unwrap(b"names", &bad, "k").is_err());
        assert!(kek.unwrap(b"names", &w[..27], "k").is_err());
        let other = AeadKey::new(&SecretKey::generate().unwrap()).unwrap();
        assert!(other.unwrap(b"names", &w, "k").is_err());
    }

    #[test]
    fn length_prefixing_separates_parts() {
        assert_ne!(lp(&[b"ab", b"c"]), lp(&[b"a", b"bc"]));
        let s = SecretKey::generate().unwrap();
        assert_ne!(
            hkdf32(s.expose(), b"", &[b"ab", b"c"]).unwrap().expose(),
            hkdf32(s.expose(), b"", &[b"a", b"bc"]).unwrap().expose()
        );
    }

    #[test]
    fn wrap_binds_its_associated_data() {
        let kek = SecretKey::generate().unwrap();
        let w = wrap(&kek, b"data-key|t|s|c|1", &[7u8; 32]).unwrap();
        assert_eq!(
            &unwrap(&kek, b"data-key|t|s|c|1", &w, "k").unwrap()[..],
            &[7u8; 32]
        );
        assert!(unwrap(&kek, b"data-key|t|s|c|2", &w, "k").is_err());
        assert!(unwrap(&kek, b"x", &w[..10], "k").is_err());
    }

    #[test]
    fn signatures() {
        let k = SigningKey::generate().unwrap();
        let sig = k.sign(b"checkpoint");
        assert!(verify_signature(&k.public_key(), b"checkpoint", &sig).is_ok());
        assert!(verify_signature(&k.public_key(), b"checkpoinT", &sig).is_err());
        let again = SigningKey::from_pkcs8(k.pkcs8()).unwrap();
        assert_eq!(again.public_key(), k.public_key());
    }

    #[test]
    fn debug_never_prints_key_bytes() {
        let k = SecretKey::from_bytes(&[0xAB; 32]).unwrap();
        assert_eq!(format!("{k:?}"), "SecretKey([redacted])");
    }
}
