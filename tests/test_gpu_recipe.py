"""studies/gpu_recipe.py's plan: the four trainings it runs, their time shares and dry-run data."""

import argparse

from studies.gpu_recipe import plan


def _args(**kw):
    return argparse.Namespace(**{"out": "/tmp/o", "minutes": 10.0, "epochs": 10, "seed": 0, "dry_run": False, **kw})


def _flag(cmd, name):
    return cmd[cmd.index(name) + 1]


def test_plan_trains_baseline_and_recommended_on_facades_and_colorize_within_the_minutes():
    jobs = plan(_args())
    assert [(j["data"], j["design"]) for j in jobs] == [("facades", "baseline"), ("facades", "recommended"),
                                                        ("colorize", "baseline"), ("colorize", "recommended")]
    assert {_flag(j["cmd"], "--config") for j in jobs} == {"configs/facades_baseline.yaml", "configs/facades_aa.yaml"}
    assert all(_flag(j["cmd"], "--trainer.max_time") == "00:00:02:30" for j in jobs)  # 10 min / 4
    assert all(_flag(j["cmd"], "--model.n_epochs") == "10" == _flag(j["cmd"], "--model.n_epochs_decay") for j in jobs)
    colorize = [j for j in jobs if j["data"] == "colorize"]
    assert all(_flag(j["cmd"], "--data.dataset") == "colorize" and _flag(j["cmd"], "--data.generate_size") == "256"
               for j in colorize)
    assert all("--trainer.max_steps" not in j["cmd"] for j in jobs)


def test_dry_run_is_two_cpu_steps_on_tiny_data_under_out():
    for j in plan(_args(dry_run=True)):
        assert _flag(j["cmd"], "--trainer.max_steps") == "2" and _flag(j["cmd"], "--trainer.accelerator") == "cpu"
        # the last --data.data_dir wins (LightningCLI): the dry run's, under --out
        dirs = [j["cmd"][i + 1] for i, a in enumerate(j["cmd"]) if a == "--data.data_dir"]
        assert dirs[-1] == f"/tmp/o/data/{j['data']}"
