"""``neuro rnn``: train RNNs on N-parity or N-DMS under the single- and multi-head curricula.

Trains one network per ``--curricula`` entry with the same settings and
budget (``--epochs`` of ``--steps`` batches), then measures, for every N each
network solved, its trained taus, its network-mediated timescales
(autocorrelations of its activity under random input) and the PCA
dimensionality of that activity; at the largest N that all solved, its
accuracy after removing neurons and after perturbing the recurrent weights,
and, as the paper's public code does, after silencing each of its fastest and
slowest neurons alone and after normalised perturbations of the taus
(increase only) and of the weights (both scored at every step of a long
random stream), and how far retraining repairs a perturbed network and adapts
it to the next N; and how well the final network still answers every earlier
N. Writes into ``--out`` what
:meth:`~neuro.rnn.experiment.CurriculumComparison.save` writes:
``metrics.json`` (everything above), ``summary.txt`` (the printed table),
``history.csv``, ``timescales.csv``, ``robustness.csv``, ``retention.csv``,
``dimensionality.csv``, ``tau_ablation.csv``, ``normalized_perturbation.csv``,
``retraining.csv``, the figures ``figures/{curriculum,taus,robustness,
retention,dimensionality,tau_ablation,normalized_perturbation,retraining}.png``,
and ``<curriculum>/`` (the Trainer's checkpoints and ``metrics.jsonl``, the
final ``network.pt`` and the network as each N was solved in ``snapshots/``).
A killed run continues with ``--resume``.

Variants of the public code: ``--model mod`` (the nonlinearity inside the
leak, ``RNN_Mod``) and ``--model continuous --duplicates 2 3`` (inputs held
for k steps of taus scaled by k, ``RNN_Continuous``), each with
``--nonlinearity {leaky_relu,relu,tanh,sigmoid}``; ``--curricula sliding``
with ``--window`` and ``--stride`` (the code's sliding-window curriculum);
``--init-heads`` and ``--add-heads`` for the multi-head curriculum (the
code's cumulative ``--init_heads`` and ``-dh``).

``--preset paper`` sets the paper's sizes and protocol (:data:`PRESETS`:
500 neurons, batches of 256, 600 per epoch, N up to 100, up to 1,000 epochs,
SGD lr 0.05 with Nesterov momentum 0.1 and clipping at 2.0 (the defaults),
validation on 50 batches, the public code's analyses at full length); flags
given explicitly still override it, and ``metrics.json`` records the preset
under ``settings``. It is meant for a GPU. Measured on one CPU thread
(``python benchmarks/rnn.py --paper-epoch``: the curriculum's own steps, 500
neurons, batches of 256, 20 steps at each of N = 2, 10, 20, 30), a training
step costs 7-8 ms per sequence step (0.04 s at N = 2, 0.6 s at N = 30,
linear in the length), so an epoch (600 steps and 50 validation batches)
projects to 0.5 min at N = 2, 6 min at N = 30 and 20 min at N = 100, a run
to N = 100 to at least 17 hours (one epoch per N) and the 1,000-epoch
budget at N = 100 to 335 hours: a GPU run, not a CPU one.
"""

from __future__ import annotations

import argparse

__all__ = ["PRESETS", "add_arguments", "config_from_args", "run"]

#: ``--preset`` values: option destinations and their values (explicit flags win).
PRESETS = {
    "paper": {
        "hidden": 500,
        "batch_size": 256,
        "steps": 600,
        "n_start": 2,
        "n_max": 100,
        "epochs": 1000,
        "lr": 0.05,
        "val_batches": 50,
        "threshold": 0.98,
        "timescale_steps": 100_000,
        "timescale_trials": 10,
        "pca_steps": 100_500,
        "pca_trials": 10,
        "tau_ablation_neurons": 20,
        "stream_steps": 1_000,
        "stream_trials": 10,
        "retrain_epochs": 20,
    }
}


class _Given(argparse.Action):
    """Store the value and remember that the flag was given (so a preset does not replace it)."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        namespace._given = {*getattr(namespace, "_given", ()), self.dest}


def apply_preset(args: argparse.Namespace) -> argparse.Namespace:
    """Fill the options of ``args.preset`` that were not given explicitly (in place).

    Returns
    -------
    argparse.Namespace
        ``args``, with ``preset_overrides``: the preset's options that
        explicit flags kept.
    """
    preset = getattr(args, "preset", None)
    given = set(getattr(args, "_given", ()))
    args.preset_overrides = []
    if preset is None:
        return args
    for dest, value in PRESETS[preset].items():
        if dest in given:
            args.preset_overrides.append(dest)
        else:
            setattr(args, dest, value)
    return args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``neuro rnn``."""
    parser.register("action", None, _Given)  # every valued option records that it was given
    parser.add_argument(
        "--preset",
        choices=tuple(PRESETS),
        default=None,
        help="the paper's sizes and protocol (500 neurons, batches of 256, 600 per epoch, N up "
        "to 100, up to 1000 epochs, full-length analyses); explicit flags override it. For a "
        "GPU: on one CPU thread an epoch projects to 20 min at N=100 and a run to N=100 to 17 h "
        "or more",
    )
    parser.add_argument("--task", choices=("parity", "dms"), default="parity", help="memory task")
    parser.add_argument(
        "--curricula",
        nargs="+",
        choices=("single", "multi", "sliding"),
        default=["single", "multi"],
        help="curricula to train and compare",
    )
    parser.add_argument(
        "--model",
        choices=("leaky", "mod", "continuous", "gru", "lstm"),
        default="leaky",
        help="recurrent network (mod: the nonlinearity inside the leak, the public code's "
        "RNN_Mod; continuous: mod with inputs duplicated, RNN_Continuous)",
    )
    parser.add_argument(
        "--nonlinearity",
        choices=("leaky_relu", "relu", "tanh", "sigmoid"),
        default="leaky_relu",
        help="of the leaky, mod and continuous networks",
    )
    parser.add_argument(
        "--duplicates",
        type=int,
        nargs="+",
        default=[1],
        metavar="K",
        help="--model continuous: each input held for K steps with taus x K; several K train "
        "in turn, one batch each per step",
    )
    parser.add_argument(
        "--window", type=int, default=1, help="--curricula sliding: N values trained together"
    )
    parser.add_argument(
        "--stride", type=int, default=1, help="--curricula sliding: N values the window moves by"
    )
    parser.add_argument(
        "--init-heads",
        type=int,
        default=1,
        help="--curricula multi: N values of the first stage (the code's --init_heads)",
    )
    parser.add_argument(
        "--add-heads",
        type=int,
        default=1,
        help="--curricula multi: N values added when the largest is solved (the code's -dh)",
    )
    parser.add_argument(
        "--sliding-heads",
        choices=("positional", "per_n"),
        default="positional",
        help="--curricula sliding: the public code's positional heads, or one head per N",
    )
    parser.add_argument("--hidden", type=int, default=64, help="neurons (paper: 500)")
    parser.add_argument("--n-start", type=int, default=2, help="first N")
    parser.add_argument("--n-max", type=int, default=30, help="stop once this N is solved")
    parser.add_argument("--threshold", type=float, default=0.98, help="accuracy to advance")
    parser.add_argument("--epochs", type=int, default=15, help="budget of epochs per curriculum")
    parser.add_argument("--steps", type=int, default=50, help="batches per epoch (paper: 600)")
    parser.add_argument(
        "--batch-size", type=int, default=128, help="sequences per batch (paper: 256)"
    )
    parser.add_argument(
        "--val-batches",
        type=int,
        default=50,
        help="validation batches after each epoch (the paper's 50: at 256 sequences each, the "
        "standard error of an accuracy near 0.98 is 0.0012)",
    )
    parser.add_argument("--lr", type=float, default=0.05, help="SGD learning rate")
    parser.add_argument(
        "--tau-init",
        type=float,
        nargs=2,
        default=[1.0, 2.0],
        metavar=("LOW", "HIGH"),
        help="initial taus uniform in [LOW, HIGH] (>= 1)",
    )
    parser.add_argument("--fixed-tau", action="store_true", help="do not train the taus")
    parser.add_argument(
        "--tau-parametrization",
        choices=("clamp", "softplus"),
        default="clamp",
        help="how tau >= 1 is kept (clamp: the paper's)",
    )
    parser.add_argument(
        "--timescale-steps",
        type=int,
        default=100_000,
        help="steps per random-input simulation, after 1,000 of burn-in (default: the public "
        "code's 100000; about 5 s per 64-neuron network on one CPU thread)",
    )
    parser.add_argument(
        "--timescale-trials", type=int, default=10, help="simulations per network (paper: 10)"
    )
    parser.add_argument("--repeats", type=int, default=3, help="random draws per ablation point")
    parser.add_argument(
        "--pca-steps",
        type=int,
        default=10_000,
        help="steps per random-input simulation for the PCA dimensionality at each N solved "
        "(0: skip; paper: 100500)",
    )
    parser.add_argument(
        "--pca-trials", type=int, default=10, help="simulations per network for the PCA (paper: 10)"
    )
    parser.add_argument(
        "--tau-ablation-neurons",
        type=int,
        default=20,
        help="silence each of this many fastest and slowest neurons alone (0: skip; paper: 20)",
    )
    parser.add_argument(
        "--normalized-strengths",
        type=float,
        nargs="*",
        default=[0.0, 0.01, 0.1, 1.0, 10.0],
        metavar="EPS",
        help="normalised perturbations of the taus (increase only) and the recurrent weights "
        "(none: skip)",
    )
    parser.add_argument(
        "--stream-steps",
        type=int,
        default=1_000,
        help="steps of the random stream that scores ablation by tau and normalised "
        "perturbations, after 100 of warm-up (paper: 1000)",
    )
    parser.add_argument(
        "--stream-trials", type=int, default=10, help="streams per score (paper: 10)"
    )
    parser.add_argument(
        "--retrain-epochs",
        type=int,
        default=2,
        help="epochs of retraining after a perturbation and on the next N (0: skip; paper: 20)",
    )
    parser.add_argument(
        "--retrain-perturbation",
        type=float,
        default=1.0,
        help="normalised perturbation of the recurrent weights before retraining",
    )
    parser.add_argument("--resume", action="store_true", help="continue runs killed in --out")
    parser.add_argument("--no-figures", action="store_true", help="skip the figures")


def config_from_args(args: argparse.Namespace):
    """The :class:`~neuro.rnn.curricula.CurriculumConfig` the options describe.

    Options whose library names differ from their flags are checked here, so
    that an error names the flag (``--hidden``, not ``hidden_size``).
    """
    from neuro._validation import check_int
    from neuro.rnn.curricula import CurriculumConfig

    apply_preset(args)
    for flag, value in (
        ("--hidden", args.hidden),
        ("--epochs", args.epochs),
        ("--steps", args.steps),
        ("--val-batches", args.val_batches),
    ):
        check_int(flag, value, minimum=1)
    return CurriculumConfig(
        task=args.task,
        n_start=args.n_start,
        n_max=args.n_max,
        threshold=args.threshold,
        model=args.model,
        hidden_size=args.hidden,
        tau_init=tuple(args.tau_init),
        train_tau=not args.fixed_tau,
        tau_parametrization=args.tau_parametrization,
        max_epochs=args.epochs,
        steps_per_epoch=args.steps,
        batch_size=args.batch_size,
        val_batches=args.val_batches,
        lr=args.lr,
        nonlinearity=args.nonlinearity,
        duplicates=tuple(args.duplicates),
        window=check_int("--window", args.window, minimum=1),
        stride=check_int("--stride", args.stride, minimum=1),
        init_heads=check_int("--init-heads", args.init_heads, minimum=1),
        add_heads=check_int("--add-heads", args.add_heads, minimum=1),
        sliding_heads=args.sliding_heads,
    )


def run(args: argparse.Namespace) -> int:
    """Entry point of ``neuro rnn``."""
    from neuro._validation import check_float, check_int
    from neuro.errors import InputError
    from neuro.rnn.experiment import compare_curricula

    config = config_from_args(args)
    for flag, value in (
        ("--pca-steps", args.pca_steps),
        ("--tau-ablation-neurons", args.tau_ablation_neurons),
        ("--retrain-epochs", args.retrain_epochs),
    ):
        check_int(flag, value, minimum=0)
    check_int("--pca-trials", args.pca_trials, minimum=1)
    check_int("--stream-steps", args.stream_steps, minimum=1)
    check_int("--stream-trials", args.stream_trials, minimum=1)
    check_float("--retrain-perturbation", args.retrain_perturbation, minimum=0.0)
    if any(e < 0 for e in args.normalized_strengths):
        raise InputError(f"--normalized-strengths must be >= 0; got {args.normalized_strengths}.")
    comp = compare_curricula(
        config,
        kinds=args.curricula,
        out_dir=args.out,
        resume=args.resume,
        overwrite=True,  # --out was prepared (and checked) by the caller
        timescale_steps=args.timescale_steps,
        timescale_trials=args.timescale_trials,
        n_repeats=check_int("--repeats", args.repeats, minimum=1),
        pca_steps=args.pca_steps,
        pca_trials=args.pca_trials,
        tau_ablation_neurons=args.tau_ablation_neurons,
        normalized_strengths=args.normalized_strengths,
        stream_steps=args.stream_steps,
        stream_trials=args.stream_trials,
        retrain_epochs=args.retrain_epochs,
        retrain_perturbation=args.retrain_perturbation,
        device=args.device,
        seed=args.seed,
        verbose=max(0, args.verbose - 1),
    )
    comp.settings["preset"] = getattr(args, "preset", None)
    given = getattr(args, "preset_overrides", [])
    comp.settings["preset_overrides"] = [f"--{d.replace('_', '-')}" for d in given]
    comp.save(args.out, overwrite=True, figures=not args.no_figures)
    print(
        f"neuro rnn: {config.task}, {config.model} network of {config.hidden_size} neurons, "
        f"{config.max_epochs} epochs x {config.steps_per_epoch} batches of {config.batch_size}"
    )
    print(comp.format_table())
    print(f"  written to {args.out}")
    return 0
