#!/usr/bin/env python3
"""Token spec v2's and v3's test vectors, computed independently of the Rust code.

Prints the subkey and the vectors table of docs/token-spec-v2.md, section 6, then (after a line
`v3:`) the vectors table of docs/token-spec-v3.md, section 4. HMAC-SHA256 comes
from Python's standard library; SipHash-2-4 is written out below from its paper (Aumasson and
Bernstein, 2012) and checked against the paper's own test vector before anything is printed.

    python3 crates/tokens/tests/reference/compare_vectors.py
"""
import hashlib
import hmac

MASK = (1 << 64) - 1


def rotl(x, b):
    return ((x << b) | (x >> (64 - b))) & MASK


def siphash24(key16: bytes, message: bytes) -> bytes:
    """SipHash-2-4 of `message` under a 16-byte key; the 64-bit result as 8 little-endian bytes."""
    k0 = int.from_bytes(key16[:8], "little")
    k1 = int.from_bytes(key16[8:16], "little")
    v = [k0 ^ 0x736F6D6570736575, k1 ^ 0x646F72616E646F6D, k0 ^ 0x6C7967656E657261, k1 ^ 0x7465646279746573]

    def round_():
        v[0] = (v[0] + v[1]) & MASK; v[1] = rotl(v[1], 13); v[1] ^= v[0]; v[0] = rotl(v[0], 32)
        v[2] = (v[2] + v[3]) & MASK; v[3] = rotl(v[3], 16); v[3] ^= v[2]
        v[0] = (v[0] + v[3]) & MASK; v[3] = rotl(v[3], 21); v[3] ^= v[0]
        v[2] = (v[2] + v[1]) & MASK; v[1] = rotl(v[1], 17); v[1] ^= v[2]; v[2] = rotl(v[2], 32)

    whole = len(message) - len(message) % 8
    for at in range(0, whole, 8):
        m = int.from_bytes(message[at:at + 8], "little")
        v[3] ^= m
        round_(); round_()
        v[0] ^= m
    last = (len(message) & 0xFF) << 56 | int.from_bytes(message[whole:], "little")
    v[3] ^= last
    round_(); round_()
    v[0] ^= last
    v[2] ^= 0xFF
    for _ in range(4):
        round_()
    return ((v[0] ^ v[1] ^ v[2] ^ v[3]) & MASK).to_bytes(8, "little")


# The paper's vector (appendix A): key 00..0f, message 00..0e, the result 0xa129ca6149be45e5
# (as an integer; its little-endian bytes are the token); and the reference code's vector for
# the empty message under the same key.
assert int.from_bytes(siphash24(bytes(range(16)), bytes(range(15))), "little") == 0xA129CA6149BE45E5
assert siphash24(bytes(range(16)), b"").hex() == "310e0edd47db6f72"

KEY = bytes(range(32))
SUBKEY = hmac.new(KEY, b"linklab-compare-subkey-v2", hashlib.sha256).digest()


def token(field: str, variant: str, value: str) -> str:
    # v3: every name field's `cross` token is made under the one field `names`.
    if variant == "cross":
        field = "names"
    message = b"\x1f".join(p.encode() for p in ("linklab-compare-v2", field, variant, value))
    return siphash24(SUBKEY[:16], message).hex()


SOUNDEX = {c: d for d, letters in enumerate(["AEIOUYHW", "BFPV", "CGJKQSXZ", "DT", "L", "MN", "R"]) for c in letters}


def soundex(name: str) -> str:
    """v1's soundex (American Soundex; H and W do not separate equal codes)."""
    out, last = name[0], SOUNDEX[name[0]]
    for c in name[1:]:
        code = SOUNDEX[c]
        if code != 0 and code != last:
            out += str(code)
        if c not in "HW":
            last = code
    return (out + "000")[:4]


def derive(variant: str, value: str) -> list:
    if variant in ("exact", "cross"):
        return [value]
    if variant == "soundex":
        return [soundex(value)]
    if variant == "initial":
        return [value[:1]]
    if variant == "year":
        return [value[:4]]
    if variant == "district":
        return [value[:-3] if len(value) > 3 else value]
    if variant == "swap":
        low, high = sorted([value[4:6], value[6:8]])
        return [value[:4] + low + high]
    if variant == "edit1":
        return sorted({value} | {value[:i] + value[i + 1:] for i in range(len(value))})
    raise ValueError(variant)


ROWS = [
    ("surname", "name", "OBRIEN", ["exact", "soundex", "initial", "edit1"]),
    ("surname", "name", "SMITH", ["exact", "soundex", "edit1"]),
    ("surname", "name", "SMYTH", ["soundex", "edit1"]),
    ("forename", "forename", "JOSE", ["exact", "soundex", "initial", "edit1"]),
    ("forename", "forename", "ANNA", ["edit1"]),
    ("dob", "dob", "19840229", ["exact", "edit1", "swap", "year"]),
    ("dob", "dob", "19841102", ["swap"]),
    ("dob", "dob", "19840211", ["swap"]),
    ("sex", "sex", "F", ["exact"]),
    ("nino", "nino", "AB123456", ["exact", "edit1"]),
    ("postcode", "postcode", "SW1A1AA", ["exact", "edit1", "district"]),
    ("ref", "id", "A1", ["exact", "edit1"]),
]

# v3: the `cross` tokens of a forename and a surname with the same standard form are equal.
ROWS_V3 = [
    ("surname", "name", "OBRIEN", ["cross"]),
    ("surname", "name", "JAMES", ["exact", "cross"]),
    ("forename", "forename", "JAMES", ["exact", "cross"]),
    ("forename", "forename", "SMITH", ["cross"]),
]


def table(rows):
    print("| field | kind | value | variant | hashed | tokens |")
    print("|---|---|---|---|---|---|")
    for field, kind, value, variants in rows:
        for variant in variants:
            # A set's tokens in ascending byte order, each beside the string it was made from.
            pairs = sorted((token(field, variant, s), s) for s in derive(variant, value))
            hashed = " ".join(f"`{s}`" for _, s in pairs)
            tokens = " ".join(f"`{t}`" for t, _ in pairs)
            print(f"| `{field}` | {kind} | `{value}` | `{variant}` | {hashed} | {tokens} |")


print(f"Subkey: `{SUBKEY.hex()}`")
print()
table(ROWS)
print()
print("v3:")
table(ROWS_V3)
