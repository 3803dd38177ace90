"""Lightning callbacks (one home): checkpoints that are never NaN and a ``last.ckpt`` that is
always the newest, the RNG state for exact resumes, the prediction writer, the training
loop's ``max_steps``, ``max_time`` stop, progress bar and progress file (``train.log``), and
the run's row in TensorBoard's HPARAMS dashboard."""

from pix2pix_aa.callbacks.checkpoint import FiniteModelCheckpoint, LastCheckpoint
from pix2pix_aa.callbacks.hparams import HparamsAtFitEnd
from pix2pix_aa.callbacks.prediction import ImageWriter, output_file_name
from pix2pix_aa.callbacks.rng import ResumeRNGState
from pix2pix_aa.callbacks.training import (
    MaxTimeNotice,
    QuietProgressBar,
    StopAfterIterations,
    TrainingLog,
    fit_end_state,
)

__all__ = ["FiniteModelCheckpoint", "HparamsAtFitEnd", "ImageWriter", "LastCheckpoint", "MaxTimeNotice",
           "QuietProgressBar", "ResumeRNGState", "StopAfterIterations", "TrainingLog", "fit_end_state",
           "output_file_name"]
