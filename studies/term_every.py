"""Does the shift term keep its stability gain when applied on every k-th iteration only?

    .venv/bin/python -m studies.term_every                       # k = 2 and 4, seeds 0 and 1
    .venv/bin/python -m studies.term_every --every 2 --seeds 0 1 2

The term is a third of a training iteration of the shipped design at batch 1 (docs/PERFORMANCE.md
section 10), and ``model.shift_every k`` divides that cost by k. This trains the shipped design
with ``--model.shift_every k`` on the procedural facades at the quick recipe, exactly as the design
study trained its candidates (same data, seeds, command), evaluates each run as the real-data
study does (evaluate.py on the 20 test images, crop protocol), and prints, seed-matched, its
stability gain over the baseline and its figures beside the shipped design (k = 1) of the same
seeds and the shipped design without the term (k = infinity), all trained again here
(``ref_baseline``, ``ref_shipped``, ``ref_noterm``: the design study's commands):
a model of one seed differs between CPU models (float rounding; docs/DEMO.md), so the design
study's rows, trained on another CPU, are not the reference. Runs resume; the record, with the
CPU it was measured on, is docs/benchmarks/term_every.json.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace

from studies import design_study as ds
from studies import real_data_study as rds

RECORD = ds.ROOT / "docs" / "benchmarks" / "term_every.json"


def candidate(k: int) -> str:
    """The shipped design with the term every ``k`` iterations, registered as a design study candidate."""
    name = f"{rds.SHIPPED}_every{k}"
    shipped = ds.CANDIDATES[rds.SHIPPED]
    ds.CANDIDATES.setdefault(name, replace(shipped, summary=f"{shipped.summary}; the term every {k} iterations",
                                           model_args={**shipped.model_args, "shift_every": k}))
    return name


def references() -> list[str]:
    """The baseline, the shipped design and it without the term, under names of their own, trained
    on this machine."""
    for name, source in (("ref_baseline", "baseline"), ("ref_shipped", rds.SHIPPED),
                         ("ref_noterm", "bc_kaiser9n_lastnone_upk13n_fr16")):
        ds.CANDIDATES.setdefault(name, ds.CANDIDATES[source])
    return ["ref_baseline", "ref_shipped", "ref_noterm"]


def table(rows: dict, names: list[str], seeds: list[int]) -> list[str]:
    """Per design: the seeds measured, crop pooled dB, the seed-matched gap to the baseline, PSNR
    gap, TV and HF ratios (means over the seeds every design of ``names`` has)."""
    facades = rows.get("facades", {}).get("quick", {})
    common = [str(s) for s in seeds if all(str(s) in facades.get(c, {}) for c in ["ref_baseline", *names])]
    lines = [f"seeds {','.join(common) or 'none'} (those every design has), facades test split, quick recipe:", "",
             "| design | crop pooled dB | gap to the baseline (dB) | PSNR gap (dB) | TV ratio | HF ratio |",
             "|---|---|---|---|---|---|"]
    base = facades.get("ref_baseline", {})
    figures = {"pooled": lambda r, b: r["pooled_db"], "gap": lambda r, b: r["pooled_db"] - b["pooled_db"],
               "psnr": lambda r, b: r["psnr"] - b["psnr"], "tv": lambda r, b: r["tv_ratio"],
               "hf": lambda r, b: r["hf_ratio"]}
    for c in names:
        per = facades.get(c, {})
        means = {k: [f(per[s], base[s]) for s in common] for k, f in figures.items()}
        cells = [f"{sum(v) / len(v):.2f}" if v else "n/a" for v in means.values()]
        lines.append(f"| {c} | " + " | ".join(cells) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--every", type=int, nargs="+", default=[2, 4])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    args = p.parse_args(argv)
    if any(k < 2 for k in args.every):
        p.error("--every: values >= 2 (k = 1 is the shipped design, already in the design study's record)")
    rds.ensure_facades()
    names = [candidate(k) for k in args.every]
    refs = references()
    for seed in args.seeds:
        for name in [*refs, *names]:
            if rds.train("facades", "quick", name, seed, threads=1):
                rds.evaluate("facades", rds.run_name("facades", "quick", name, seed), threads=1)
    rows = rds.collect(args.seeds)
    facades = rows.get("facades", {}).get("quick", {})
    ds.write_json(RECORD, {"every": args.every, "seeds": args.seeds, **ds.provenance(),
                           "rows": {c: facades.get(c, {}) for c in [*refs, *names]}})
    print("\n".join(table(rows, [*refs[1:], *names], args.seeds)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
