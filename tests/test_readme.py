"""The README's Python examples run as written (each fenced block after a ``<!-- runnable -->``
marker), so they cannot go stale; and what they print is what the comments say."""

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def runnable_blocks() -> list[str]:
    return re.findall(r"<!-- runnable -->\s*```python\n(.*?)```", README.read_text(), flags=re.S)


def test_the_readme_has_runnable_examples():
    assert len(runnable_blocks()) >= 1


def test_readme_python_examples_run_and_print_what_they_claim():
    out = io.StringIO()
    for block in runnable_blocks():
        with contextlib.redirect_stdout(out):
            exec(compile(block, str(README), "exec"), {"__name__": "readme_example"})
    lines = out.getvalue().splitlines()
    assert lines[0] == "torch.Size([1, 16, 32, 32])"
    plain = float(re.search(r"plain conv: ([\d.]+) dB", out.getvalue()).group(1))
    strided = float(re.search(r"strided down-up: ([\d.]+) dB", out.getvalue()).group(1))
    assert plain > 100 and strided < 40, (plain, strided)
