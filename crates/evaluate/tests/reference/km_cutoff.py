"""The reference for censoring at the data cut-off: Kaplan-Meier, the log-rank test and the
restricted mean time by lifelines, on a small generated world.

Run once to write km_cutoff.json beside this file (the Rust test
`time_to_event_censored_at_the_cut_off_matches_lifelines` in crates/evaluate/src/tests_lifelines.rs
reads it; nothing runs this script in the tests):

    python3 -m venv venv && venv/bin/pip install lifelines
    venv/bin/python km_cutoff.py

The rule implemented here independently of the Rust code (docs/pipeline.md, `data_cutoff`):
a person's window is (index, index + follow_up]; the last day observed is the end of the window
or the cut-off, whichever comes first; the time is the offset of the first event in the window
if it falls on or before the last day observed, else the person is censored there; a person
indexed on or after the cut-off is left out.
"""

import json
import random
from pathlib import Path

import lifelines
from lifelines import KaplanMeierFitter
from lifelines.statistics import logrank_test
from lifelines.utils import restricted_mean_survival_time

FOLLOW_UP = 365
CUTOFF = 1500
rng = random.Random(20261203)

persons = []
for i in range(80):
    treated = i % 2 == 0
    index = rng.randint(900, 1520)
    events = []
    for _ in range(rng.choice([0, 0, 1, 1, 2, 3])):
        # Treated persons offend a little later: a real difference for the test to find.
        events.append(index + rng.randint(-60, 420 if treated else 330))
    persons.append({"id": f"p{i:02}", "treated": treated, "index": index, "events": events})

durations = {True: [], False: []}
observed = {True: [], False: []}
censored_at_cutoff = 0
for p in persons:
    last = min(FOLLOW_UP, CUTOFF - p["index"])
    if last < 1:
        continue
    offsets = [e - p["index"] for e in p["events"] if 0 < e - p["index"] <= FOLLOW_UP]
    first = min(offsets) if offsets else None
    if first is not None and first <= last:
        durations[p["treated"]].append(first)
        observed[p["treated"]].append(True)
    else:
        durations[p["treated"]].append(last)
        observed[p["treated"]].append(False)
        if last < FOLLOW_UP:
            censored_at_cutoff += 1

expected = {"censored_at_cutoff": censored_at_cutoff}
for treated, name in [(True, "treated"), (False, "comparison")]:
    kmf = KaplanMeierFitter().fit(durations[treated], observed[treated])
    event_days = sorted({d for d, o in zip(durations[treated], observed[treated]) if o})
    curve = kmf.survival_function_["KM_estimate"]
    expected[name] = {
        "persons": len(durations[treated]),
        "steps": [[day, float(curve.loc[day])] for day in event_days],
        "rmst": float(restricted_mean_survival_time(kmf, t=FOLLOW_UP)),
    }
test = logrank_test(durations[True], durations[False], observed[True], observed[False])
expected["log_rank"] = {"chi2": float(test.test_statistic), "p": float(test.p_value)}

out = {
    "made_by": f"km_cutoff.py with lifelines {lifelines.__version__}",
    "follow_up_days": FOLLOW_UP,
    "data_cutoff": CUTOFF,
    "persons": persons,
    "expected": expected,
}
Path(__file__).with_name("km_cutoff.json").write_text(json.dumps(out, indent=1) + "\n")
