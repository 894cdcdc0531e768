"""Links the clear-text extracts of a `linklab synth` world with Splink (DuckDB backend).

The peer of linklab's `method = "probabilistic"` in the benchmark's quality and speed cases
(`crates/bench/src/quality.rs`). It does what a user of Splink would do with the same files:
standardise each extract in SQL, train one model (u by random sampling, the prior from
deterministic rules, m by EM), predict on blocked pairs and cluster the pairs at or above the
threshold into persons by connected components, over all the extracts at once
(`link_and_dedupe`).

    python splink_link.py WORLD OUT.csv --extracts releases,participants --threads 2

WORLD is the folder `linklab synth` wrote; OUT.csv gets `source_dataset,unique_id,cluster_id`
for every record. The last line printed is JSON: timings, counts, peak memory and versions.
"""

import argparse
import json
import logging
import os
import time

import duckdb
import splink
import splink.comparison_library as cl
from splink import DuckDBAPI, Linker, SettingsCreator, block_on

# Each extract's file and columns as `linklab synth` writes them (docs/synth.md), and its text
# encoding (DuckDB reads Windows-1252 as Latin-1: the two agree on every letter synth writes).
EXTRACTS = {
    "releases": ("releases.csv", "utf-8", ("first_name", "last_name", "birth_date", "sex", "ni_number")),
    "participants": ("participants.csv", "utf-8", ("Forename", "Surname", "DOB", "Gender", "NINO")),
    "reoffences": ("reoffences.csv", "utf-8", ("forename", "surname", "date_of_birth", "sex", "nino")),
    "employment": ("employment.csv", "latin-1", ("FORENAME", "SURNAME", "DOB", "SEX", "NINO")),
    "benefits": ("benefits.csv", "utf-8", ("forename", "surname", "dob", "sex", "nino")),
}

# The first and last date of birth taken as real (1900-01-01 is a placeholder).
FIRST_DOB, LAST_DOB = "1900-01-02", "2025-01-01"


def standardise_sql(name: str, path: str, encoding: str, columns: tuple) -> str:
    """One extract as the model's columns: upper-case letters of the first forename and of the
    surname, the date of birth as YYYY-MM-DD from any of the styles synth writes, sex M/F, and
    the NI number's first 8 characters when it has a valid shape; anything else is null."""
    forename, surname, dob, sex, nino = (f'"{c}"' for c in columns)
    letters = "regexp_replace(upper({}), '[^A-Z]', '', 'g')"
    first_word = f"split_part(trim(regexp_replace({forename}, '\\s+', ' ', 'g')), ' ', 1)"
    parsed = (
        f"coalesce(try_strptime({dob}, '%Y-%m-%d'), try_strptime({dob}, '%d/%m/%Y'), "
        f"try_strptime({dob}, '%Y%m%d'))::DATE"
    )
    nino_clean = f"regexp_replace(upper({nino}), '[^A-Z0-9]', '', 'g')"
    return f"""
        CREATE TABLE std_{name} AS
        SELECT record_id AS unique_id,
               nullif({letters.format(first_word)}, '') AS forename,
               nullif({letters.format(surname)}, '') AS surname,
               CASE WHEN {parsed} BETWEEN DATE '{FIRST_DOB}' AND DATE '{LAST_DOB}'
                    THEN strftime({parsed}, '%Y-%m-%d') END AS dob,
               CASE WHEN upper(trim({sex})) IN ('M', 'MALE', '1') THEN 'M'
                    WHEN upper(trim({sex})) IN ('F', 'FEMALE', '2') THEN 'F' END AS sex,
               CASE WHEN regexp_full_match({nino_clean}, '[A-Z]{{2}}[0-9]{{6}}[A-D]?')
                    THEN left({nino_clean}, 8) END AS nino
        FROM read_csv('{path}', all_varchar = true, header = true, encoding = '{encoding}')
    """


def settings() -> SettingsCreator:
    """Comparisons on the five fields linklab compares; blocking as linklab's match keys (the
    NI number; names, date of birth and sex, of which the soundex key is approximated by the
    forename's initial, as DuckDB has no soundex) and its extra rules (both names, for a wrong
    date)."""
    return SettingsCreator(
        link_type="link_and_dedupe",
        unique_id_column_name="unique_id",
        comparisons=[
            cl.NameComparison("forename").configure(term_frequency_adjustments=True),
            cl.NameComparison("surname").configure(term_frequency_adjustments=True),
            cl.DateOfBirthComparison("dob", input_is_string=True),
            cl.ExactMatch("sex"),
            cl.LevenshteinAtThresholds("nino", 1),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("nino"),
            block_on("surname", "dob"),
            block_on("substr(forename, 1, 1)", "dob"),
            block_on("forename", "surname"),
        ],
        retain_matching_columns=False,
        retain_intermediate_calculation_columns=False,
    )


def query(con: duckdb.DuckDBPyConnection, sql: str) -> list:
    """Runs `sql` and fetches every row (DuckDB 2 wants a result finished before the next)."""
    return con.execute(sql).fetchall()


def peak_rss_mib() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) // 1024
    return 0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("world")
    parser.add_argument("out")
    parser.add_argument("--extracts", required=True)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--threshold", type=float, default=0.95)
    parser.add_argument("--u-pairs", type=float, default=1e7)
    # DuckDB takes 80% of the machine's memory unless told; the benchmark gives it linklab's
    # default memory_limit (4 GiB), so the two run in the same budget on a shared machine.
    parser.add_argument("--memory-limit", default="4GiB")
    args = parser.parse_args()
    names = args.extracts.split(",")

    start = time.time()
    con = duckdb.connect()
    query(con, f"SET threads = {args.threads}")
    query(con, f"SET memory_limit = '{args.memory_limit}'")
    # Spill beside the output, not into the folder the benchmark was started from.
    spill = os.path.join(os.path.dirname(os.path.abspath(args.out)), "splink-spill")
    query(con, f"SET temp_directory = '{spill}'")
    for name in names:
        file, encoding, columns = EXTRACTS[name]
        query(con, standardise_sql(name, os.path.join(args.world, file), encoding, columns))
    records = sum(query(con, f"SELECT count(*) FROM std_{n}")[0][0] for n in names)
    loaded = time.time()

    db_api = DuckDBAPI(connection=con)
    tables = [db_api.register(f"std_{n}", dataset_display_name=n) for n in names]
    linker = Linker(tables, settings(), log_level=logging.WARNING)
    training = linker.training
    training.estimate_probability_two_random_records_match(
        [block_on("forename", "surname", "dob"), block_on("nino", "dob")], recall=0.8
    )
    training.estimate_u_using_random_sampling(max_pairs=args.u_pairs, seed=1)
    # One EM session per pair of rules, so every field gets an m: names from pairs blocked on
    # the date of birth, the date of birth and the NI number from pairs blocked on both names.
    training.estimate_parameters_using_expectation_maximisation(block_on("dob"))
    training.estimate_parameters_using_expectation_maximisation(block_on("forename", "surname"))
    trained = time.time()

    pairs = linker.inference.predict(threshold_match_probability=args.threshold)
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(
        pairs, threshold_match_probability=args.threshold
    )
    query(
        con,
        f"COPY (SELECT source_dataset, unique_id, cluster_id FROM {clusters.physical_name}) "
        f"TO '{args.out}' (HEADER, DELIMITER ',')"
    )
    done = time.time()
    matched_pairs = query(con, f"SELECT count(*) FROM {pairs.physical_name}")[0][0]
    print(
        json.dumps(
            {
                "records": records,
                "load_seconds": loaded - start,
                "train_seconds": trained - loaded,
                "predict_cluster_seconds": done - trained,
                "seconds": done - loaded,
                "pairs_at_threshold": matched_pairs,
                "peak_rss_mib": peak_rss_mib(),
                "splink": splink.__version__,
                "duckdb": duckdb.__version__,
            }
        )
    )


if __name__ == "__main__":
    main()
