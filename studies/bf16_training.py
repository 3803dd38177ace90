"""What does training in bf16 autocast do to the models?

    .venv/bin/python -m studies.bf16_training --jobs 2          # train and evaluate what is missing
    .venv/bin/python -m studies.bf16_training --stage report    # the record and table, training nothing

``--trainer.precision bf16-mixed --model.channels_last true`` (autocast: convolutions in bfloat16,
the rest and the weights in float32; both networks in oneDNN's channels-last layout) is the opt-in
that takes a training iteration furthest below the reference pix2pix on a CPU with AMX
(docs/PERFORMANCE.md section 11). bf16 changes the numbers beyond float32 rounding (the layout only
the summation order), so its speed says nothing about the models it trains. This trains the
baseline, Bin-5 and the shipped design with it at the quick recipe, exactly as
studies/real_data_study.py trains them (same data, seeds, command and evaluation: evaluate.py in
float32 on the test split, crop protocol), on the facades at their own seeds (10-12; Bin-5 has no
float32 run there on this CPU, so it is trained on the real-photo tasks only) and on the two
real-photo tasks at seeds 0-2, and prints each bf16 run minus the float32 run of the same design and
seed (the real-data study's), and the stability gain over the baseline when both train in bf16
beside the same when both train in float32; then the baseline and the shipped design at the long
recipe on the facades, seeds 0-2, where the shipped design meets its stability goal. Runs resume;
the record, with the CPU it was measured on, is docs/benchmarks/bf16_training.json, from which a
fresh clone's ``--stage report`` prints the same table.
"""

from __future__ import annotations

import argparse
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from studies import design_study as ds
from studies import real_data_study as rds

RECORD = ds.ROOT / "docs" / "benchmarks" / "bf16_training.json"
PRECISION = {"precision": "bf16-mixed"}
LAYOUT = {"channels_last": True}
#: The designs of the speed goal (baseline, Bin-5, the shipped design) and the data sets each is
#: compared on at the quick recipe: where the real-data study has its float32 runs on this CPU.
DESIGNS = {"baseline": list(rds.DATASETS), rds.SHIPPED: list(rds.DATASETS), "bin5": ["photos", "colorize"]}
#: At the long recipe (3600 steps): the facades, where the shipped design meets its stability goal
#: (docs/REAL_DATA_STUDY.md), seeds 0-2 as the real-data study's float32 runs.
LONG = {"facades": ["baseline", rds.SHIPPED]}
#: The step times in the training logs are not compared: the float32 runs were trained earlier,
#: beside other loads (docs/PERFORMANCE.md section 11 times both in one run instead).
METRICS = rds.VARIANT_METRICS


def candidate(design: str) -> str:
    """``design`` trained with bf16 autocast in the channels-last layout, registered as a design
    study candidate."""
    name = f"{design}_bf16"
    base = ds.CANDIDATES[design]
    ds.CANDIDATES.setdefault(name, replace(base, summary=f"{base.summary}; trained with bf16 autocast, channels-last",
                                           model_args={**base.model_args, **LAYOUT},
                                           trainer_args={**base.trainer_args, **PRECISION}))
    return name


def seeds_of(dataset: str, recipe: str) -> list[int]:
    return rds.DATASETS[dataset].get("own_seeds", [0, 1, 2]) if recipe == "quick" else [0, 1, 2]


def cells() -> list[tuple[str, str, str]]:
    """(data set, recipe, design) compared, in the table's order."""
    quick = [(d, "quick", design) for d in rds.DATASETS for design, sets in DESIGNS.items() if d in sets]
    return quick + [(d, "long", design) for d, designs in LONG.items() for design in designs]


def queue() -> list[tuple[str, str, str, int]]:
    """(data set, recipe, design, seed): the quick recipe seed by seed, so an interrupted study has
    whole comparisons, then the long recipe seed by seed."""
    return [(d, r, design, seeds_of(d, r)[i]) for recipe in ("quick", "long") for i in range(3)
            for d, r, design in cells() if r == recipe]


def table(rows: dict) -> list[str]:
    """Per data set, recipe and design: the seeds, bf16 minus float32 at the same seed for each
    figure, and the stability gain over the baseline in each precision at those seeds."""
    heads = [h for _, h, _ in METRICS]
    lines = ["bf16 run minus float32 run of the same design, recipe and seed, mean ± sd over seeds; the last two "
             "columns: stability gain over the baseline trained in the same precision, at the same seeds", "",
             "| data set | recipe | design | seeds | " + " | ".join(heads)
             + " | gain, both bf16 (dB) | gain, both float32 (dB) |",
             "|---|---|---|---|" + "---|" * (len(heads) + 2)]
    for d, r, design in cells():
        runs = rows.get(d, {}).get(r, {})
        bf16 = candidate(design)
        seeds = sorted(set(runs.get(bf16, {})) & set(runs.get(design, {})), key=int)
        if not seeds:
            continue
        mine, theirs = runs[bf16], runs[design]
        figures = [rds.fmt(rds.paired_gap(mine, theirs, seeds, k), digits, True) for k, _, digits in METRICS]
        gains = ["-", "-"] if design == "baseline" else [
            rds.fmt(rds.paired_gap(mine, runs.get(candidate("baseline"), {}), seeds, "pooled_db"), 2, True),
            rds.fmt(rds.paired_gap(theirs, runs.get("baseline", {}), seeds, "pooled_db"), 2, True)]
        lines.append(f"| {d} | {r} | {rds.LABELS.get(design, design)} | {','.join(seeds)} | "
                     + " | ".join(figures + gains) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--stage", choices=["all", "report"], default="all",
                   help="report: the record and table from the runs evaluated so far (or recorded), training nothing")
    p.add_argument("--jobs", type=ds.at_least(1), default=1,
                   help="runs trained (and evaluated) at a time, one thread each")
    args = p.parse_args(argv)
    names = {design: candidate(design) for design in DESIGNS}
    if args.stage == "all":
        rds.ensure_facades()

        def run_one(task: tuple[str, str, str, int]) -> None:
            d, r, design, seed = task
            if rds.train(d, r, names[design], seed, threads=1):
                rds.evaluate(d, rds.run_name(d, r, names[design], seed), threads=1)

        with ThreadPoolExecutor(args.jobs) as pool:  # threads: each run is a subprocess
            list(pool.map(run_one, queue()))
    rows = rds.merge_missing(rds.collect(), (ds.read_json(RECORD) or {}).get("rows", {}))
    record: dict = {}
    for d, r, design, seed in queue():  # the rows the table reads, bf16 and float32
        for name in (names[design], design, "baseline", names["baseline"]):
            row = rows.get(d, {}).get(r, {}).get(name, {}).get(str(seed))
            if row is not None:
                record.setdefault(d, {}).setdefault(r, {}).setdefault(name, {})[str(seed)] = row
    if any(name in cands for recipes in record.values() for cands in recipes.values() for name in names.values()):
        ds.write_record(RECORD, {"options": ds.CANDIDATES[names["baseline"]].train_args(), "rows": record})
    print("\n".join(table(rows)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
