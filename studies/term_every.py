"""Does the shift term keep its stability gain when applied on every k-th iteration only?

    .venv/bin/python -m studies.term_every                       # k = 2 and 4, seeds 0 and 10-12
    .venv/bin/python -m studies.term_every --every 2 --seeds 10 11 12
    .venv/bin/python -m studies.term_every --stage report      # the record and table, training nothing

The term is a third of a training iteration of the shipped design at batch 1 (docs/PERFORMANCE.md
section 10), and ``model.shift_every k`` divides that cost by k. This trains the shipped design
with ``--model.shift_every k`` on the procedural facades at the quick recipe, exactly as the design
study trained its candidates (same data, seeds, command), evaluates each run as the real-data
study does (evaluate.py on the 20 test images, crop protocol), and prints, seed-matched, its
stability gain over the baseline and its figures beside the shipped design (k = 1) of the same
seeds and the shipped design without the term (k = infinity), all trained on this machine: a
model of one seed differs between CPU models (float rounding; docs/DEMO.md), so the design study's
rows (seeds 0-4, trained on another CPU) are not the reference. At those seeds the references are
trained again under names of their own (``ref_baseline``, ``ref_shipped``, ``ref_noterm``); at
the facades' own seeds of studies/real_data_study.py they are that study's runs (the same
command and name, trained once for both). Runs resume; the record, with the CPU it was measured
on, is docs/benchmarks/term_every.json.
"""

from __future__ import annotations

import argparse
import functools
import sys
from dataclasses import replace

from studies import design_study as ds
from studies import real_data_study as rds

RECORD = ds.ROOT / "docs" / "benchmarks" / "term_every.json"


#: The candidates' name before their k.
PREFIX = f"{rds.SHIPPED}_every"


def candidate(k: int) -> str:
    """The shipped design with the term every ``k`` iterations, registered as a design study candidate."""
    name = f"{PREFIX}{k}"
    shipped = ds.CANDIDATES[rds.SHIPPED]
    ds.CANDIDATES.setdefault(name, replace(shipped, summary=f"{shipped.summary}; the term every {k} iterations",
                                           model_args={**shipped.model_args, "shift_every": k}))
    return name


#: Reference role -> the design study candidate it is.
ROLES = {"baseline": "baseline", "shipped": rds.SHIPPED, "noterm": "bc_kaiser9n_lastnone_upk13n_fr16"}


@functools.cache
def _design_study_seeds(candidate: str) -> frozenset:
    """The seeds of the design study's facades rows of ``candidate`` (its record read once, not at
    every row the table looks up)."""
    return frozenset(ds.recorded_runs()["eval"].get(candidate, {}).get("facades", {}))


def reference(role: str, seed: int) -> str:
    """The run name of a reference ``role`` at ``seed``: the study candidate itself where the design
    study's record has no facades row at that seed (then a run of that name is this machine's),
    else ``ref_<role>``, a copy of the candidate trained here under a name of its own."""
    source = ROLES[role]
    if seed not in _design_study_seeds(source):
        return source
    ds.CANDIDATES.setdefault(f"ref_{role}", ds.CANDIDATES[source])
    return f"ref_{role}"


def table(rows: dict, names: list[str], seeds: list[int]) -> list[str]:
    """Per design (a reference role or a candidate of ``names``): the seeds measured, crop pooled dB,
    the seed-matched gap to the baseline, PSNR gap, TV and HF ratios (means over its seeds)."""
    facades = rows.get("facades", {}).get("quick", {})

    def row(design: str, seed: int) -> dict | None:
        name = reference(design, seed) if design in ROLES else design
        return facades.get(name, {}).get(str(seed))

    designs = [r for r in ROLES if r != "baseline"] + names
    lines = ["facades test split, quick recipe; means over each design's seeds (those with a baseline run); "
             "the last column against the shipped design (the term every iteration) over the seeds both have, "
             "mean ± sd:", "",
             "| design | seeds | crop pooled dB | gap to the baseline (dB) | PSNR gap (dB) | TV ratio | HF ratio | "
             "gap to the shipped design (dB, seeds) |", "|---|---|---|---|---|---|---|---|"]
    figures = {"pooled": lambda r, b: r["pooled_db"], "gap": lambda r, b: r["pooled_db"] - b["pooled_db"],
               "psnr": lambda r, b: r["psnr"] - b["psnr"], "tv": lambda r, b: r["tv_ratio"],
               "hf": lambda r, b: r["hf_ratio"]}
    for d in designs:
        have = [s for s in seeds if row(d, s) and row("baseline", s)]
        means = {k: [f(row(d, s), row("baseline", s)) for s in have] for k, f in figures.items()}
        cells = [f"{sum(v) / len(v):.2f}" if v else "n/a" for v in means.values()]
        both = [s for s in have if row("shipped", s)]
        paired = rds.mean_sd([row(d, s)["pooled_db"] - row("shipped", s)["pooled_db"] for s in both])
        cells.append("-" if d == "shipped" or not paired[2] else
                     f"{rds.fmt(paired, 2, True)} ({','.join(map(str, both))})")
        lines.append(f"| {d} | {','.join(map(str, have)) or '-'} | " + " | ".join(cells) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--every", type=int, nargs="+", default=[2, 4])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, *rds.DATASETS["facades"]["own_seeds"]])
    p.add_argument("--stage", choices=["all", "report"], default="all",
                   help="report: the record and table from the runs evaluated so far, training nothing")
    args = p.parse_args(argv)
    if any(k < 2 for k in args.every):
        p.error("--every: values >= 2 (k = 1 is the shipped design, already in the design study's record)")
    names = [candidate(k) for k in args.every]
    if args.stage == "all":
        rds.ensure_facades()
    for seed in args.seeds if args.stage == "all" else []:
        for name in [*(reference(r, seed) for r in ROLES), *names]:
            if rds.train("facades", "quick", name, seed, threads=1):
                rds.evaluate("facades", rds.run_name("facades", "quick", name, seed), threads=1)
    # A fresh clone has none of the runs on disk and the real-data study's record lacks the k > 1
    # runs: this study's own record supplies them, so --stage report prints the same table.
    recorded = (ds.read_json(RECORD) or {}).get("rows", {})
    rows = rds.merge_missing(rds.collect(), {"facades": {"quick": recorded}})
    facades = rows.get("facades", {}).get("quick", {})
    # Every recorded run stays: a report of fewer seeds or k erased the others, which may exist
    # nowhere else (a fresh clone has none of the runs).
    record: dict = {name: dict(by_seed) for name, by_seed in recorded.items()}
    for seed in args.seeds:  # this invocation's rows: this machine's runs (or the record's)
        for name in [*(reference(r, seed) for r in ROLES), *names]:
            if str(seed) in facades.get(name, {}):
                record.setdefault(name, {})[str(seed)] = facades[name][str(seed)]
    recorded_every = sorted(int(n[len(PREFIX):]) for n in record if n.startswith(PREFIX) and n[len(PREFIX):].isdigit())
    seeds = sorted({int(s) for by_seed in record.values() for s in by_seed})
    ds.write_record(RECORD, {"every": recorded_every, "seeds": seeds, "rows": record})
    missing = [f"k={k} seed {seed}" for k, name in zip(args.every, names) for seed in args.seeds
               if str(seed) not in facades.get(name, {})]
    if missing:  # a table of n/a rows alone read like a result
        shown = RECORD.relative_to(ds.ROOT) if RECORD.is_relative_to(ds.ROOT) else RECORD
        print(f"note: no run of {', '.join(missing[:6])}{' ...' if len(missing) > 6 else ''} on disk or in "
              f"{shown}: their cells read n/a; --stage all trains them", file=sys.stderr)
    print("\n".join(table(rows, names, args.seeds)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
