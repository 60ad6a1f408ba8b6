"""Checkpointed training for estimators trained on :class:`neuro.train.Trainer`."""

from __future__ import annotations

from pathlib import Path

from neuro._validation import check_bool, check_int
from neuro.errors import InputError, OutputExistsError


class CheckpointedFit:
    """Mixin: ``checkpoint_dir`` / ``checkpoint_every_n_steps`` settings and ``fit(resume=True)``.

    The estimator keeps the two settings as attributes; :meth:`_trainer`
    builds the Trainer that writes there, and :meth:`_resume` turns
    ``fit``'s ``resume`` flag into the Trainer's ``resume="last"`` after
    checking there is something to resume.
    """

    checkpoint_dir = None
    checkpoint_every_n_steps = None

    def _trainer(self, n_train: int, validate: bool = True, **settings):
        """The Trainer for ``fit``, writing checkpoints to ``checkpoint_dir`` when it is set.

        The estimator's ``epochs``, ``batch_size`` (at most ``n_train``),
        ``lr``, ``weight_decay``, ``patience``, ``device``, ``precision``,
        ``random_state`` and ``verbose`` become the Trainer's settings, with
        early stopping on ``val_loss`` and the best weights restored when
        ``validate``; ``settings`` adds to or overrides them.
        """
        from neuro.train import Trainer

        settings = {
            "max_epochs": self.epochs,
            "batch_size": min(self.batch_size, n_train),
            "lr": self.lr,
            "weight_decay": self.weight_decay,
            "early_stopping_metric": "val_loss" if validate else None,
            "early_stopping_patience": self.patience,
            "restore_best": bool(validate),
            "device": self.device,
            "precision": self.precision,
            "seed": self.random_state,
            "verbose": self.verbose,
            **settings,
        }

        every = check_int(
            "checkpoint_every_n_steps", self.checkpoint_every_n_steps, minimum=1, allow_none=True
        )
        if every is not None and self.checkpoint_dir is None:
            raise InputError(
                "checkpoint_every_n_steps needs checkpoint_dir=..., the folder where the "
                "checkpoints are written."
            )
        return Trainer(out_dir=self.checkpoint_dir, checkpoint_every_n_steps=every, **settings)

    def _resume(self, resume) -> str | None:
        """``"last"`` when resuming a run that left a checkpoint, None when not resuming."""
        if not check_bool("resume", resume):
            folder = None if self.checkpoint_dir is None else Path(self.checkpoint_dir)
            if folder is not None and folder.is_dir() and any(folder.iterdir()):
                raise OutputExistsError(
                    f"checkpoint_dir {str(folder)!r} is not empty (an earlier run's checkpoints); "
                    "pass fit(..., resume=True) to continue that run, or give an empty or new "
                    "folder."
                )
            return None
        if self.checkpoint_dir is None:
            raise InputError(
                "resume=True needs checkpoint_dir=..., the folder where the interrupted run "
                "wrote its checkpoints."
            )
        last = Path(self.checkpoint_dir) / "checkpoints" / "last.pt"
        if not last.is_file():
            raise InputError(
                f"Nothing to resume: {last} does not exist. Fit without resume=True to start "
                "a run there."
            )
        return "last"
