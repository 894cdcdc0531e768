"""The candidate pairs of linklab's probabilistic method and their level patterns, as a Spark job.

With `[link] method = "probabilistic"`, `linklab link --engine spark` writes a job file (JSON)
and runs

    probabilistic.py JOB.json pairs

which writes, for the extract listed i-th in the job, `pairs_dir/extract=<i>/`: one row per
candidate pair, sorted by (record, spine): `record` (the record's number in its extract), `spine`
(the spine record's), `rule` (the first blocking rule that found the pair), `pattern` (4 bits
per compared field, field 0 lowest: the index of its level, 15 when missing) and `rules` (a bit
per rule that found the pair, of the first 16 rules; linklab's EM trains on each rule's pairs). For the spine
itself a pair is a spine record and an earlier spine record. An extract without pairs has no
folder. All extracts go through one plan (a plan per extract made the demo's job four times
slower: each small stage costs about a second in local mode). linklab does everything else: the pattern counts, EM,
the weights, the decisions and the clustering. The method is docs/linkage.md; the blocking here
is that of crates/link/src/probabilistic/blocking.rs and the levels those of `compare` in
fields.rs. Only tokens and record numbers pass through here, and nothing is printed but counts.

linklab hashes the tokens a blocking rule joins on into one key; here the tokens themselves are
joined on, so two records share a key exactly when they hold the same tokens.
"""

from functools import reduce

from pyspark.sql import functions as F

from linklab_spark import main, records

# The level of a comparison where either exact token is missing.
MISSING = 15
# The rules that get a bit in `rules` (TRAINING_RULES in blocking.rs).
TRAINING_RULES = 16


def side(spark, extract, job):
    """Per record of the extract: `k<k>` the token of match key k (null when the extract has no
    such column), `s<f>_<v>` the scalar comparison tokens of field f (variant 0 is exact; a
    name's `cross` token last, null when the extract, of token spec v2, has none) and `e<f>` its
    edit-1 set without nulls or repeats."""
    present = set(spark.read.parquet(*[p["path"] for p in extract["parts"]]).columns)
    columns = []
    for k, token in enumerate(extract["tokens"]):
        column = F.col(token) if token is not None else F.lit(None).cast("binary")
        columns.append(column.alias(f"k{k}"))
    for f, field in enumerate(job["fields"]):
        for v, name in enumerate(field["scalars"]):
            columns.append(F.col(name).alias(f"s{f}_{v}"))
        if field["cross"] is not None:
            cross = field["cross"]
            column = F.col(cross) if cross in present else F.lit(None).cast("binary")
            columns.append(column.alias(f"s{f}_{len(field['scalars'])}"))
        if field["edit1"] is not None:
            items = F.filter(F.col(field["edit1"]), lambda item: item.isNotNull())
            columns.append(F.array_distinct(items).alias(f"e{f}"))
    return records(spark, extract, columns)


def rule_keys(frame, rule, ids):
    """(ids…, p0, p1, …): a row per blocking key of `rule` of each record, none for a record
    that misses one of the rule's tokens; an edit-1 part gives one key per item."""
    parts = []
    for part in rule["parts"]:
        if "key" in part:
            parts.append(F.col(f"k{part['key']}"))
        elif "scalar" in part:
            f, v = part["scalar"]
            parts.append(F.col(f"s{f}_{v}"))
        elif "either_order" in part:
            # Two names' cross tokens, the smaller first (null when either is).
            x, y = [F.col(f"s{f}_{v}") for f, v in part["either_order"]]
            both = x.isNotNull() & y.isNotNull()
            parts.append(F.when(both, F.least(x, y)))
            parts.append(F.when(both, F.greatest(x, y)))
        else:
            parts.append(F.explode(F.col(f"e{part['edit1']}")))
    parts = [column.alias(f"p{i}") for i, column in enumerate(parts)]
    if sum("edit1" in part for part in rule["parts"]) > 1:
        raise ValueError(f"rule {rule['name']} has more than one edit-1 part")
    names = [f"p{i}" for i in range(len(parts))]
    present = reduce(lambda a, b: a & b, [F.col(n).isNotNull() for n in names])
    return frame.select(*ids, *parts).where(present), names


def spine_blocks(spine, rules):
    """Per rule: (spine, p…) for the spine's keys held by at most the rule's cap of records."""
    blocks = []
    for rule in rules:
        keys, names = rule_keys(spine, rule, ["record"])
        small = keys.groupBy(*names).count().where(F.col("count") <= rule["cap"]).select(*names)
        blocks.append(
            (keys.withColumnRenamed("record", "spine").join(small, names).cache(), names)
        )
    return blocks


def candidates(frame, rules, blocks, spine_index):
    """(extract, record, spine, rule): each pair that shares a key of a rule, under its first
    rule; a spine record is paired with earlier spine records only."""
    found = None
    ids = ["extract", "record"]
    for r, (rule, (block, names)) in enumerate(zip(rules, blocks)):
        keys, _ = rule_keys(frame, rule, ids)
        pairs = (
            keys.join(block, names)
            .where((F.col("extract") != spine_index) | (F.col("spine") < F.col("record")))
            .select(*ids, "spine", F.lit(r).alias("rule"))
        )
        found = pairs if found is None else found.unionByName(pairs)
    bit = F.when(F.col("rule") < TRAINING_RULES, F.expr("shiftleft(1, rule)")).otherwise(0)
    return found.withColumn("bit", bit).groupBy(*ids, "spine").agg(
        F.min("rule").cast("int").alias("rule"),
        F.expr("bit_or(bit)").cast("int").alias("rules"),
    )


def level(f, field, job):
    """The level of field f of the pair (`a_` columns the record's, `b_` the spine record's):
    the first that holds of exact, edit-1 (if the kind has it), transposed (the first two name
    fields, each one's cross token equal to the other record's of the other) and each other
    scalar variant in order, else disagree; missing when either exact token is."""
    a = lambda v: F.col(f"a_s{f}_{v}")  # noqa: E731
    b = lambda v: F.col(f"b_s{f}_{v}")  # noqa: E731
    expr = F.when(a(0).isNull() | b(0).isNull(), MISSING).when(a(0) == b(0), 0)
    next_level = 1
    if field["edit1"] is not None:
        expr = expr.when(F.arrays_overlap(F.col(f"a_e{f}"), F.col(f"b_e{f}")), next_level)
        next_level += 1
    if field["cross"] is not None:
        crossed = job["crossed"]
        if crossed is not None and f in crossed:
            p, q = crossed
            v = len(field["scalars"])
            ap, aq = F.col(f"a_s{p}_{v}"), F.col(f"a_s{q}_{v}")
            bp, bq = F.col(f"b_s{p}_{v}"), F.col(f"b_s{q}_{v}")
            swapped = ap.isNotNull() & aq.isNotNull() & (ap == bq) & (aq == bp)
            expr = expr.when(swapped, next_level)
        next_level += 1
    for v in range(1, len(field["scalars"])):
        expr = expr.when(a(v).isNotNull() & (a(v) == b(v)), next_level)
        next_level += 1
    return expr.otherwise(next_level)


def comparison_columns(frame, prefix):
    """The frame's comparison columns (not its match keys), prefixed."""
    return frame.select(
        *[F.col(c).alias(f"{prefix}{c}") for c in frame.columns if not c.startswith("k")]
    )


def pairs(spark, job):
    """Every extract's candidate pairs with their level patterns, sorted by (record, spine)."""
    fields, rules = job["fields"], job["rules"]
    spine = side(spark, job["extracts"][job["spine"]], job).cache()
    blocks = spine_blocks(spine, rules)
    every = reduce(
        lambda a, b: a.unionByName(b),
        [
            side(spark, extract, job).withColumn("extract", F.lit(index))
            for index, extract in enumerate(job["extracts"])
        ],
    ).cache()
    pattern = reduce(
        lambda acc, x: acc.bitwiseOR(x),
        [F.shiftleft(level(f, field, job).cast("long"), 4 * f) for f, field in enumerate(fields)],
        F.lit(0).cast("long"),
    )
    left = comparison_columns(every, "a_")
    same_record = (F.col("extract") == F.col("a_extract")) & (F.col("record") == F.col("a_record"))
    (
        candidates(every, rules, blocks, job["spine"])
        .join(left, same_record)
        .join(comparison_columns(spine, "b_"), F.col("spine") == F.col("b_record"))
        .select("extract", "record", "spine", "rule", pattern.alias("pattern"), "rules")
        .orderBy("extract", "record", "spine")
        .write.partitionBy("extract")
        .mode("overwrite")
        .parquet(job["pairs_dir"])
    )


if __name__ == "__main__":
    main("probabilistic.py", {"pairs": pairs})
