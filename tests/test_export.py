"""pix2pix-aa-export: ONNX (checked with onnxruntime) and TorchScript files that match eager, and
APS generators refused rather than exported wrong."""

from __future__ import annotations

import pytest
import torch

from pix2pix_aa.export import ExportError, PadToMultiple, _is_export, export_generator, main, verify_inputs
from pix2pix_aa.networks import UNetGenerator

onnxruntime = pytest.importorskip("onnxruntime", reason="the export extra (pip install -e '.[export]')")


@pytest.mark.slow  # torch.export of a 6-level Bin-5 U-Net, then onnxruntime: ~20 s on the 2-core machine
def test_onnx_export_of_a_checkpoint_matches_eager_on_two_sizes(trained_run, tmp_path, capsys):
    run = trained_run[1]  # bin5: the blur's depthwise convolutions after a reflect pad of symbolic size
    out = tmp_path / "netG.onnx"
    assert main([str(run / "checkpoints" / "last.ckpt"), "--format", "onnx", "--out", str(out)]) == 0
    assert "max |export - eager|" in capsys.readouterr().out
    assert _is_export(out, "onnx") and not _is_export(out, "torchscript")  # so a re-export may replace it
    # Independently of the command's own check: a size it was not verified on.
    from pix2pix_aa.evaluation.checkpoints import load_generator

    generator = load_generator(run / "checkpoints" / "last.ckpt").generator
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    x = torch.rand(3, 3, 128, 192) * 2 - 1
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    with torch.inference_mode():
        assert float((torch.from_numpy(got) - generator(x)).abs().max()) < 1e-4
    _padded_as_predict_does(generator, lambda x: torch.from_numpy(session.run(None, {"input": x.numpy()})[0]))


def _padded_as_predict_does(generator, run) -> None:
    """A 256x187 input (187 not a multiple of 2**num_downs) used to fail inside onnxruntime with a
    Concat error; the file pads it as predict does and returns the same 256x187 image."""
    from pix2pix_aa.layers.padding import pad_to_multiple

    for shape in ((1, 3, 256, 187), (2, 3, 70, 90)):
        x = torch.rand(*shape, generator=torch.Generator().manual_seed(1)) * 2 - 1
        with torch.inference_mode():
            expected = generator(pad_to_multiple(x, generator.size_multiple))[..., :shape[2], :shape[3]]  # predict's
            got = run(x)
        assert got.shape == expected.shape == shape
        assert float((got - expected).abs().max()) < 1e-4


def test_torchscript_export_matches_eager(tmp_path):
    generator = UNetGenerator(num_downs=4, ngf=8, antialias="bin5").eval()
    worst = export_generator(generator, tmp_path / "g.pt", "torchscript")
    assert worst < 1e-5
    loaded = torch.jit.load(str(tmp_path / "g.pt"))
    x = torch.rand(1, 3, 48, 80) * 2 - 1
    with torch.inference_mode():
        assert torch.allclose(loaded(x), generator(x), atol=1e-5)
    # Outside no_grad too: the file's parameters kept requires_grad, and .numpy() on its output failed.
    assert loaded(x).numpy().shape == (1, 3, 48, 80)
    assert all(p.requires_grad for p in generator.parameters())  # the caller's module is untouched


def test_torchscript_export_of_the_blurred_design_matches_eager_at_every_size(tmp_path):
    """The blur's reflect padding falls back to replicate on maps smaller than its pad, a branch
    on the map's size: a trace froze the example's branch, so a file traced at 64 px differed at
    other sizes (refused once the deep layers mattered, as in a trained model) and one traced at a
    larger size failed below it."""
    torch.manual_seed(0)
    generator = UNetGenerator(num_downs=4, ngf=8, antialias="kaiser9_c0.17_w0.16", antialias_mode="blur_conv",
                              upsample_antialias="kaiser13_c0.19_w0.12", fullres_channels=4).eval()
    for m in generator.modules():  # small running variances: the deep layers matter, as after training
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_var.uniform_(0.001, 0.01)
    for size in (64, 128):
        export_generator(generator, tmp_path / f"g{size}.pt", "torchscript", inputs=verify_inputs(generator, size))
        loaded = torch.jit.load(str(tmp_path / f"g{size}.pt"))
        for shape in ((16, 16), (32, 48), (64, 64), (96, 160), (33, 47)):
            x = torch.rand(1, 3, *shape) * 2 - 1
            with torch.inference_mode():
                assert torch.allclose(loaded(x), PadToMultiple(generator)(x), atol=1e-5), (size, shape)


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_aps_is_refused_not_exported_wrong(tmp_path, fmt):
    generator = UNetGenerator(num_downs=4, ngf=8, antialias="aps", pad_type="circular").eval()
    out = tmp_path / f"aps.{fmt}"
    with pytest.raises(ExportError, match="APS chooses its sampling phase"):
        export_generator(generator, out, fmt)
    assert not out.exists()


def test_verification_catches_a_wrong_export(tmp_path):
    """The check is what refuses: a trace of a model whose behaviour depends on the input's
    values (here: its sign) is frozen to the example's branch."""

    class Branchy(torch.nn.Module):
        size_multiple, in_channels = 1, 3

        def forward(self, x):
            return x if float(x.mean()) > 0 else -x

    inputs = [torch.ones(1, 3, 8, 8), -torch.ones(1, 3, 8, 8)]
    with pytest.raises(ExportError, match="differs from the eager generator by up to 2"):
        export_generator(Branchy(), tmp_path / "b.pt", "torchscript", inputs=inputs)


def test_verify_inputs_are_multiples_of_the_generator(tmp_path):
    shapes = [tuple(x.shape) for x in verify_inputs(UNetGenerator(num_downs=5, ngf=4))]
    assert shapes == [(1, 3, 64, 64), (2, 3, 64, 128), (1, 3, 64, 64), (1, 3, 65, 125), (1, 3, 32, 32)]


def test_bad_checkpoint_is_one_line(tmp_path, capsys):
    bad = tmp_path / "junk.ckpt"
    bad.write_bytes(b"not a checkpoint")
    assert main([str(bad), "--out", str(tmp_path / "x.onnx")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8])
def test_export_padding_equals_the_eager_reflect_with_fallback(size):
    from pix2pix_aa.layers.padding import _reflect_or_replicate, safe_pad

    x = torch.arange(2 * size * (size + 1), dtype=torch.float32).reshape(1, 2, size, size + 1)
    for pad in ((2, 2, 2, 2), (1, 2, 1, 2), (0, 1, 3, 0)):
        assert torch.equal(_reflect_or_replicate(x, pad), safe_pad(x, pad, "reflect")), (size, pad)


def test_resnet_generator_exports_to_onnx(tmp_path):
    from pix2pix_aa.networks import ResNetGenerator

    generator = ResNetGenerator(n_blocks=1, ngf=8, antialias="bin5").eval()  # one residual block: the export's cost
    assert export_generator(generator, tmp_path / "resnet.onnx", "onnx") < 1e-4


def test_a_run_folder_exports_its_last_checkpoint_and_a_folder_of_runs_is_one_error(baseline_run, tmp_path, capsys):
    out = tmp_path / "netG.pt"
    assert main([str(baseline_run), "--format", "torchscript", "--out", str(out)]) == 0 and out.is_file()
    assert main([str(baseline_run.parent.parent), "--format", "torchscript", "--out", str(tmp_path / "x.pt")]) == 2
    err = capsys.readouterr().err
    assert "runs' checkpoints" in err and len(err.strip().splitlines()) == 1


# ONNX's off-grid input is checked on the checkpoint's export above (an ONNX export takes 10-40 s):
# export_generator exports a pad_input generator's network with pad_input off, the same graph in
# either format, and that switch is what the pad_input case here checks.
@pytest.mark.parametrize("pad_input", [False, True])
def test_an_input_off_the_grid_is_padded_inside_the_exported_graph_as_predict_does(tmp_path, pad_input):
    """A ``pad_input`` generator exports the network inside the same padding as predict's: its own
    pad-and-crop branches on the input's size, which a graph cannot follow."""
    torch.manual_seed(0)
    generator = UNetGenerator(num_downs=4, ngf=8, antialias="bin5", pad_input=pad_input).eval()
    export_generator(generator, tmp_path / "g.pt", "torchscript")
    assert generator.pad_input == pad_input  # the caller's generator is untouched
    _padded_as_predict_does(generator, torch.jit.load(str(tmp_path / "g.pt")))


def test_out_names_the_format_and_never_replaces_a_file_that_is_not_an_export(baseline_run, tmp_path, capsys):
    """``--out netG.pt`` wrote an ONNX file under that name; ``--out last.ckpt`` replaced the training
    checkpoint being exported (any other file too); ``--atol nan`` switched the check off."""
    import shutil

    ckpt = tmp_path / "last.ckpt"
    shutil.copyfile(baseline_run / "checkpoints" / "last.ckpt", ckpt)
    before = ckpt.read_bytes()
    notes = tmp_path / "notes.md"
    notes.write_text("mine")
    (tmp_path / "notes.pt").write_text("mine")
    torch.jit.script(torch.nn.Linear(2, 2)).save(str(tmp_path / "mine.pt"))
    mine = (tmp_path / "mine.pt").read_bytes()
    cases = [([str(ckpt), "--format", "torchscript", "--out", str(ckpt)], f"--out {ckpt}: .ckpt names training"),
             ([str(ckpt), "--out", str(tmp_path / "notes.pt")],
              f"--out {tmp_path / 'notes.pt'} exists and is not an earlier TorchScript export of this command"),
             ([str(ckpt), "--out", str(notes)], f"--out {notes} exists and is not an earlier ONNX export"),
             # the user's own TorchScript model: a model file of the format, but not this command's
             ([str(ckpt), "--out", str(tmp_path / "mine.pt")],
              f"--out {tmp_path / 'mine.pt'} exists and is not an earlier TorchScript export"),
             ([str(ckpt), "--format", "onnx", "--out", str(tmp_path / "g.pt")], "--format onnx and --out "),
             ([str(ckpt), "--out", str(tmp_path / "g.pt"), "--atol", "nan"], "--atol must be a finite number >= 0"),
             ([str(ckpt), "--out", str(tmp_path / "g.pt"), "--atol=-1"], "--atol must be a finite number >= 0"),
             ([str(ckpt), "--out", str(tmp_path / "g.pt"), "--size", "0"], "--size must be >= 1"),
             ([str(ckpt), "--out", str(tmp_path / "new.ckpt")], f"--out {tmp_path / 'new.ckpt'}: .ckpt names training")]
    for argv, message in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: {message}") and len(err.strip().splitlines()) == 1, err
    assert ckpt.read_bytes() == before and notes.read_text() == "mine" == (tmp_path / "notes.pt").read_text()
    assert (tmp_path / "mine.pt").read_bytes() == mine
    # The name says the format; an earlier export of it is replaced.
    out = tmp_path / "g.pt"
    for _ in range(2):
        assert main([str(ckpt), "--out", str(out)]) == 0
        assert "(torchscript," in capsys.readouterr().out
    torch.jit.load(str(out))
    assert not _is_export(ckpt, "torchscript") and not _is_export(ckpt, "onnx")
    assert not _is_export(out, "onnx")  # an ONNX export is recognised in the test above
