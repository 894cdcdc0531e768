//! Byte sizes written as text (`"512MiB"`).

/// Parses a byte size: digits, an optional space, then an optional unit.
///
/// Units are case-sensitive: `B`; the decimal `kB`/`KB`, `MB`, `GB`, `TB` (powers of 1000); and
/// the binary `KiB`, `MiB`, `GiB`, `TiB` (powers of 1024). No unit means bytes. Fractions and
/// bare letters such as `4G` are refused, because `G` could mean either. Returns `None` for text
/// that is not a size, or one that overflows `u64`.
pub fn parse_byte_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let digits_end = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(digits_end);
    if digits.is_empty() {
        return None;
    }
    let unit = unit.strip_prefix(' ').unwrap_or(unit);
    let scale: u64 = match unit {
        "" | "B" => 1,
        "kB" | "KB" => 1000,
        "MB" => 1000_u64.pow(2),
        "GB" => 1000_u64.pow(3),
        "TB" => 1000_u64.pow(4),
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        _ => return None,
    };
    digits.parse::<u64>().ok()?.checked_mul(scale)
}
