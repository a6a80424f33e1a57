//! Request ids: the client's when it sent a sane one, a fresh one otherwise.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use http::header::{HeaderName, HeaderValue};
use http::HeaderMap;

/// Client-sent ids longer than this are replaced.
const MAX_ID_BYTES: usize = 200;

/// The request's id: the value of `header` when it is 1 to 200 visible ASCII
/// characters, or a new 32-hex-digit id.
pub fn for_request(headers: &HeaderMap, header: &HeaderName) -> HeaderValue {
    match headers.get(header) {
        Some(value) if is_sane(value) => value.clone(),
        _ => generate(),
    }
}

fn is_sane(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_ID_BYTES
        && bytes.iter().all(|b| (0x21..=0x7e).contains(b))
}

/// A new id, unique within the process and unpredictable across processes.
pub fn generate() -> HeaderValue {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static KEYS: OnceLock<(RandomState, RandomState)> = OnceLock::new();
    let (high_key, low_key) = KEYS.get_or_init(|| (RandomState::new(), RandomState::new()));
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let (high, low) = (high_key.hash_one(n), low_key.hash_one(n));
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut id = [0u8; 32];
    for (i, byte) in high
        .to_be_bytes()
        .iter()
        .chain(low.to_be_bytes().iter())
        .enumerate()
    {
        id[2 * i] = HEX[usize::from(byte >> 4)];
        id[2 * i + 1] = HEX[usize::from(byte & 0x0f)];
    }
    HeaderValue::from_bytes(&id).unwrap_or_else(|_| HeaderValue::from_static("0"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_sane_client_ids_and_replaces_others() {
        let name = HeaderName::from_static("x-request-id");
        let mut headers = HeaderMap::new();
        headers.insert(&name, HeaderValue::from_static("abc-123"));
        assert_eq!(for_request(&headers, &name), "abc-123");
        headers.insert(&name, HeaderValue::from_static("has space"));
        let replaced = for_request(&headers, &name);
        assert_eq!(replaced.len(), 32);
        assert_ne!(generate(), generate());
    }
}
