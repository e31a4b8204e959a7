//! Values derived from a name rather than drawn from the generator's dice,
//! so the same name gives the same value in every tenant and every run:
//! an actor's id, a person's location.

/// FNV-1a, 64 bits: tiny, stable across Rust versions (unlike std's
/// hasher), and enough to spread a few hundred names.
pub fn hash(text: &str) -> u64 {
    fnv1a(0xcbf2_9ce4_8422_2325, text.as_bytes())
}

fn fnv1a(basis: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(basis, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// A UUID-shaped id for `name` of `kind` (say `actor`, `TA505`): the same
/// pair always gives the same id, and an actor and a malware of the same
/// name get different ones. It is a version 8 (custom) UUID, which tells
/// anyone reading it that it was made up.
pub fn uuid_of(kind: &str, name: &str) -> String {
    let key = format!("{kind}\u{0}{name}");
    let high = fnv1a(0xcbf2_9ce4_8422_2325, key.as_bytes());
    // A second basis gives the other 64 bits independently of the first.
    let low = fnv1a(0x6c62_272e_07bb_0142, key.as_bytes());
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&high.to_be_bytes());
    bytes[8..].copy_from_slice(&low.to_be_bytes());
    uuid::Builder::from_custom_bytes(bytes)
        .into_uuid()
        .hyphenated()
        .to_string()
}

/// One of `items`, chosen by `key`; `None` only for an empty list.
pub fn pick<'a, T>(items: &'a [T], key: &str) -> Option<&'a T> {
    if items.is_empty() {
        return None;
    }
    items.get((hash(key) % items.len() as u64) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_per_kind_and_name() {
        let id = uuid_of("actor", "TA505");
        assert_eq!(id, uuid_of("actor", "TA505"));
        assert_ne!(id, uuid_of("actor", "TA542"));
        assert_ne!(id, uuid_of("malware", "TA505"));
        assert_eq!(id.len(), 36);
        assert_eq!(id.as_bytes()[14], b'8', "version 8: {id}");
    }
}
