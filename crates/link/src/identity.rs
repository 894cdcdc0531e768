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

/// For each person, how many persons before it (in person order) have the same fingerprint.
///
/// Persons are sorted by the first 8 bytes of their fingerprint (SHA-256 outputs, so nearly
/// always distinct) and person: a compact sort of 16-byte rows rather than of indices compared
/// through their 32-byte fingerprints. Only a run of equal prefixes (in practice the persons
/// without any token) is compared in full.
fn tie_ordinals(fingerprints: &[[u8; 32]]) -> Vec<u32> {
    let prefix = |fp: &[u8; 32]| u64::from_be_bytes(fp[..8].try_into().expect("8 bytes"));
    let mut order: Vec<(u64, u32)> = fingerprints
        .par_iter()
        .enumerate()
        .map(|(p, fp)| (prefix(fp), p as u32))
        .collect();
    order.par_sort_unstable();
    let mut ordinal = vec![0_u32; fingerprints.len()];
    for run in order.chunk_by_mut(|a, b| a.0 == b.0).filter(|run| run.len() > 1) {
        run.sort_unstable_by_key(|&(_, p)| (fingerprints[p as usize], p));
        for pair in run.windows(2) {
            let (a, b) = (pair[0].1 as usize, pair[1].1 as usize);
            if fingerprints[a] == fingerprints[b] {
                ordinal[b] = ordinal[a] + 1;
            }
        }
    }
    ordinal
}

pub(crate) fn person_ids(hasher: &TokenHasher, fingerprints: &[[u8; 32]]) -> Vec<PersonId> {
    let ordinal = tie_ordinals(fingerprints);
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

    fn check(fingerprints: &[[u8; 32]], expected: &[u32]) {
        assert_eq!(tie_ordinals(fingerprints), expected);
    }

    #[test]
    fn ties_are_numbered_in_person_order() {
        let mut tail = [7_u8; 32];
        tail[31] = 1; // the same first 8 bytes as [7; 32], another fingerprint
        check(&[[7; 32], [1; 32], [7; 32], [7; 32]], &[0, 0, 1, 2]);
        check(&[[7; 32], tail, [7; 32], tail, [1; 32]], &[0, 0, 1, 1, 0]);
        check(&[tail, [7; 32]], &[0, 0]);
        check(&[], &[]);
    }

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
