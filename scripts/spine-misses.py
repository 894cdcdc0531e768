"""Why the spine's pairs are missed, and whether its five fields could tell them apart.

Reads a `linklab synth` world in clear text (its `releases.csv` and `truth/records.csv`) and the
`linked/releases` dataset a run made of it, and prints:

1. the pairs of spine records of one person that the run kept apart, by clear-text agreement
   pattern (forename, surname, date of birth, sex, NI number: 1 equal, 0 not; `n` = a NI number
   missing on one side; `T` = forename and surname transposed), and how many are nicknames of
   one another in the synth's own table;
2. for the most common missed patterns, every pair of spine records with that pattern in the
   whole file, split into the same person and different people. Where different people
   outnumber the same person, no linker that sees only these fields links the pattern at 99.9%
   precision, with tokens or in clear text.

Run with the bench's venv (it needs duckdb), from the project root:
    .venv-bench/bin/python scripts/spine-misses.py WORLD
where WORLD holds `extracts/` (from `linklab synth`) and `work/linked/` (from `linklab link`).
docs/linkage.md quotes its output for the heavy world of 100,000 people.
"""

import re
import sys
from pathlib import Path

import duckdb

PATTERN = """(a.f = b.f)::int || (a.s = b.s)::int || (a.d = b.d)::int || (a.x = b.x)::int
    || (coalesce(a.n = b.n, false))::int
    || case when a.n is null or b.n is null then 'n' else '' end
    || case when a.f = b.s and a.s = b.f then 'T' else '' end"""


def nickname_pairs(root: Path) -> set:
    text = (root / "crates/synth/src/pools/nicknames.rs").read_text()
    pairs = set()
    for full, nicks in re.findall(r'\("([^"]+)", &\[([^\]]*)\]\)', text):
        names = [full.upper()] + [n.upper() for n in re.findall(r'"([^"]+)"', nicks)]
        pairs.update((a, b) for a in names for b in names if a != b)
    return pairs


def main() -> None:
    world = Path(sys.argv[1])
    root = Path(__file__).resolve().parent.parent
    con = duckdb.connect()
    con.execute(
        f"""create table x as select r.record_id id, upper(trim(first_name)) f,
          upper(trim(last_name)) s, birth_date d, r.sex x, ni_number n, t.person p, l.person_id q
        from read_csv('{world}/extracts/releases.csv', all_varchar = true) r
        join (select * from read_csv('{world}/extracts/truth/records.csv', all_varchar = true)
              where extract = 'releases') t using (record_id)
        join (select record_id, person_id from '{world}/work/linked/releases/*.parquet') l
          using (record_id)"""
    )
    true_pairs = con.execute(
        "select count(*) from x a join x b on a.id < b.id and a.p = b.p"
    ).fetchone()[0]
    missed = con.execute(
        f"""select {PATTERN} pattern, a.f, b.f from x a join x b
        on a.id < b.id and a.p = b.p and a.q <> b.q"""
    ).fetchall()
    print(f"pairs of spine records of one person: {true_pairs}, kept apart: {len(missed)}")
    counts = {}
    for pattern, _, _ in missed:
        counts[pattern] = counts.get(pattern, 0) + 1
    for pattern, count in sorted(counts.items(), key=lambda kv: -kv[1]):
        print(f"  {pattern}: {count}")
    nicknames = nickname_pairs(root)
    print(f"  of which nicknames: {sum(1 for _, f, g in missed if (f, g) in nicknames)}")

    print("every pair of spine records with a missed pattern's agreement (same person / not):")
    for pattern, join in [
        ("forename, date of birth, sex equal; surname not; a NI number missing",
         "a.f = b.f and a.d = b.d and a.x = b.x and a.s <> b.s"),
        ("the same, forenames under 0.5% of their sex's spine records",
         "a.f = b.f and a.d = b.d and a.x = b.x and a.s <> b.s and (select count(*) from x y"
         " where y.f = a.f and y.x = a.x) < 0.005 * (select count(*) from x y where y.x = a.x)"),
        ("forename, surname, sex equal; date of birth within one edit; a NI number missing",
         "a.f = b.f and a.s = b.s and a.x = b.x and a.d <> b.d"
         " and levenshtein(a.d, b.d) <= 1"),
    ]:
        same, other = con.execute(
            f"""select count(*) filter (where a.p = b.p), count(*) filter (where a.p <> b.p)
            from x a join x b on a.id < b.id and {join} and (a.n is null or b.n is null)"""
        ).fetchone()
        print(f"  {pattern}: {same} / {other}")


if __name__ == "__main__":
    main()
