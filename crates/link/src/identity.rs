//! Record fingerprints and project-specific person ids.

use linklab_tokens::{SEPARATOR, TokenHasher};
use rayon::prelude::*;
use sha2::{Digest, Sha256};

/// Domain label of record fingerprints.
const RECORD_FINGERPRINT_LABEL: &[u8] = b"linklab/record-fingerprint/v1";
/// Domain label of person ids.
const PERSON_ID_LABEL: &[u8] = b"linklab/person-id/v1";
/// Hex digits kept of a person id (128 bits).
pub(crate) const PERSON_ID_HEX: usize = 32;

/// SHA-256 of `"linklab/record-fingerprint/v1"`, then for each match key in cascade order
/// `0x1F ‖ key name ‖ 0x1F ‖ (0x00 if the token is null, else 0x01 ‖ the 32 token bytes)`.
pub(crate) fn record_fingerprint(key_names: &[String], tokens: &[Option<&[u8]>]) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(RECORD_FINGERPRINT_LABEL);
    for (name, token) in key_names.iter().zip(tokens) {
        hash.update([SEPARATOR]);
        hash.update(name.as_bytes());
        hash.update([SEPARATOR]);
        match token {
            None => hash.update([0]),
            Some(t) => {
                hash.update([1]);
                hash.update(t);
            }
        }
    }
    hash.finalize().into()
}

/// The person ids of persons whose smallest record fingerprints are `fingerprints` (in person
/// order): the first 32 hex digits of HMAC-SHA256(project key, `"linklab/person-id/v1"` ‖ 0x1F ‖
/// fingerprint). When several persons share their smallest fingerprint (spine records without
/// any token, or identical records kept apart by the cluster size limit), the second and later of
/// them, in person order, get `‖ 0x1F ‖ n` (n = 1, 2, … as 4 big-endian bytes) appended, so ids
/// are unique.
/// A person id: 32 lowercase hex digits, held inline (half the memory of a `String`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PersonId([u8; PERSON_ID_HEX]);

impl PersonId {
    /// The id's ASCII bytes.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

pub(crate) fn person_ids(hasher: &TokenHasher, fingerprints: &[[u8; 32]]) -> Vec<PersonId> {
    let mut order: Vec<u32> = (0..fingerprints.len() as u32).collect();
    order.par_sort_unstable_by_key(|&p| (fingerprints[p as usize], p));
    let mut ordinal = vec![0_u32; fingerprints.len()];
    for pair in order.windows(2) {
        if fingerprints[pair[0] as usize] == fingerprints[pair[1] as usize] {
            ordinal[pair[1] as usize] = ordinal[pair[0] as usize] + 1;
        }
    }
    fingerprints
        .par_iter()
        .zip(ordinal)
        .map(|(fp, n)| {
            // label ‖ 0x1F ‖ fingerprint, then 0x1F ‖ n for a tie, on the stack.
            let mut message = [0_u8; PERSON_ID_LABEL.len() + 38];
            let mut len = PERSON_ID_LABEL.len();
            message[..len].copy_from_slice(PERSON_ID_LABEL);
            message[len] = SEPARATOR;
            message[len + 1..len + 33].copy_from_slice(fp);
            len += 33;
            if n > 0 {
                message[len] = SEPARATOR;
                message[len + 1..len + 5].copy_from_slice(&n.to_be_bytes());
                len += 5;
            }
            // The first 32 hex digits are the hex of the first 16 bytes.
            let mut id = [0_u8; PERSON_ID_HEX];
            hex::encode_to_slice(&hasher.hmac(&message[..len])[..PERSON_ID_HEX / 2], &mut id)
                .expect("16 bytes are 32 hex digits");
            PersonId(id)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use linklab_tokens::SecretKey;

    #[test]
    fn tied_fingerprints_get_distinct_ids() {
        let hasher = TokenHasher::new(&SecretKey::from_bytes((0..32).collect()));
        let ids = person_ids(&hasher, &[[7; 32], [1; 32], [7; 32]]);
        assert_eq!(ids.len(), 3);
        assert_ne!(ids[0], ids[2]);
        assert_eq!(
            ids[0],
            person_ids(&hasher, &[[7; 32]])[0],
            "the first of a tie keeps the plain id"
        );
        assert!(
            ids.iter()
                .all(|id| id.as_bytes().iter().all(u8::is_ascii_hexdigit))
        );
    }

    #[test]
    fn null_and_present_tokens_differ() {
        let names = vec!["a".to_owned(), "b".to_owned()];
        let t = [5_u8; 32];
        assert_ne!(
            record_fingerprint(&names, &[Some(&t), None]),
            record_fingerprint(&names, &[None, Some(&t)])
        );
    }
}
