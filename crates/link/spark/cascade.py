"""The relational steps of linklab's match-key cascade, as a Spark job.

`linklab link --engine spark` writes a job file (JSON) and runs this script twice:

    cascade.py JOB.json anchors   # spine record -> anchor per match key
    cascade.py JOB.json decide    # every other record -> (key, person) of its first hit

Between the two, linklab clusters the spine records into persons (an ordered union-find, which
has no relational form) and writes `record -> person`. The plan is the one in the module docs of
crates/link/src/lib.rs, section 5; only tokens and record numbers pass through here, and nothing
is printed but counts.

A record's number is its position in its extract (see linklab_spark.py).
"""

from pyspark.sql import Window
from pyspark.sql import functions as F

from linklab_spark import main, records


def anchors(spark, job):
    """Per spine record and key k: MIN(record) OVER (PARTITION BY tok_k), null without a token."""
    spine = job["extracts"][job["spine"]]
    frame = records(spark, spine)
    columns = [F.col("record")]
    for k, token in enumerate(spine["tokens"]):
        if token is None:
            anchor = F.lit(None).cast("long")
        else:
            anchor = F.when(
                F.col(token).isNotNull(), F.min("record").over(Window.partitionBy(token))
            )
        columns.append(anchor.cast("long").alias(f"anchor_{k}"))
    frame.select(*columns).write.mode("overwrite").parquet(job["anchors_dir"])


def key_tokens(frame, tokens):
    """(record, key, tok) for every non-null token of the keys in `tokens` (key -> column)."""
    rows = None
    for k, token in tokens.items():
        part = frame.where(F.col(token).isNotNull()).select(
            "record", F.lit(k).cast("int").alias("key"), F.col(token).alias("tok")
        )
        rows = part if rows is None else rows.unionByName(part)
    return rows


def decide(spark, job):
    """Per record of every other extract: the first key whose token some person holds."""
    spine = job["extracts"][job["spine"]]
    persons = spark.read.parquet(job["persons_dir"]).select(
        F.col("record").cast("long"), F.col("person").cast("long")
    )
    spine_keys = {k: t for k, t in enumerate(spine["tokens"]) if t is not None}
    # person_tokens: (key, token) -> person, NULL when spine records of several persons hold it.
    person_tokens = None
    if spine_keys:
        person_tokens = (
            key_tokens(records(spark, spine), spine_keys)
            .join(persons, "record")
            .groupBy("key", "tok")
            .agg(F.countDistinct("person").alias("n"), F.min("person").alias("p"))
            .select("key", "tok", F.when(F.col("n") == 1, F.col("p")).alias("person"))
            .cache()
        )
    for index, extract in enumerate(job["extracts"]):
        if index == job["spine"]:
            continue
        tokens = {
            k: t for k, t in enumerate(extract["tokens"]) if t is not None and k in spine_keys
        }
        if tokens:
            hits = (
                key_tokens(records(spark, extract), tokens)
                .join(person_tokens, ["key", "tok"])
                .select("record", "key", "person")
            )
        else:
            hits = spark.createDataFrame([], "record long, key int, person long")
        # The strongest key with a hit decides; an ambiguous hit (NULL person) stops the cascade.
        decided = (
            hits.groupBy("record")
            .agg(F.min(F.struct("key", "person")).alias("d"))
            .select("record", F.col("d.key").alias("key"), F.col("d.person").alias("person"))
        )
        decided.write.mode("overwrite").parquet(f"{job['decided_dir']}/{extract['name']}")


if __name__ == "__main__":
    main("cascade.py", {"anchors": anchors, "decide": decide})
