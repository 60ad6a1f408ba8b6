"""Both deep encoders in ``compare_encoders`` and ``neuro fit-encoder``, on simulated subjects.

Two subjects whose category voxels share 3 tuning families and respond to
the appearance of their category where it lies (``category_tuning=0.7``);
features are the simulator's oracle maps, the semantic vectors its CLIP-like
embedding. Sizes are tiny: these tests check the plumbing (what each model
receives, that a pre-trained model is used as given, what is written and
refused), not accuracy.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from data_loaders.fmri import FMRIDataset
from data_loaders.simulate.fmri import simulate_fmri
from neuro.cli import main
from neuro.encoders.compare import compare_encoders
from neuro.encoders.incontext import InContextEncoder
from neuro.encoders.ridge import VoxelRidgeCV
from neuro.encoders.transformer import TransformerEncoder
from neuro.errors import InputError

EMBED_DIM = 12
#: Settings valid for both deep encoders (compare_encoders gives readout_kwargs to each).
DEEP = {"epochs": 3, "d_model": 16, "n_heads": 2, "batch_size": 16}
IC_SMALL = {"d_model": 16, "n_layers": 1, "n_heads": 2, "n_registers": 2, "k_max": 30}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def study():
    sim = simulate_fmri(
        n_subjects=2,
        n_stimuli=60,
        n_repeats=2,
        image_size=32,
        voxels_per_roi=2,
        snr=2.0,
        seed=0,
        category_tuning=0.7,
        n_families=3,
    )
    return {
        "sim": sim,
        "maps": sim.stimuli.oracle_maps(8),
        "semantic": sim.stimuli.semantic_embedding(dim=EMBED_DIM, appearance=True),
        "datasets": [FMRIDataset.from_simulation(s, sim.stimuli) for s in sim.subjects],
    }


@pytest.fixture(scope="module")
def pretrained(study):
    """An in-context encoder meta-trained on subject 1's stimulus averages (semantic vectors)."""
    responses, ids, _ = study["datasets"][1].average_repeats()
    x = study["semantic"][ids]
    return InContextEncoder(**IC_SMALL, epochs=3, device="cpu").fit(x, responses)


def _state(est):
    return {k: v.clone() for k, v in est.model_.state_dict().items()}


def test_named_deep_encoders_join_the_per_roi_table_and_are_saved(study, tmp_path):
    ds = study["datasets"][0]
    result = compare_encoders(
        ds,
        ["ridge", "transformer", "incontext"],
        features=study["maps"],
        semantic=study["semantic"],
        readout_kwargs=DEEP,
        device="cpu",
        n_boot=50,
    )
    rois = sorted(set(ds.roi_labels.tolist()))
    assert len(rois) == 8  # V1-V4 and the four category ROIs
    table = result.table
    assert set(table["model"]) == {"ridge", "transformer", "incontext"}
    for model in ("ridge", "transformer", "incontext"):
        rows = table[table["model"] == model]
        assert sorted(set(rows["roi"]) - {"all"}) == rois
        assert rows.set_index("roi").loc[rois, "n_voxels"].sum() == ds.n_voxels
        assert np.isfinite(result.scores[model]).all()
    transformer = result.encoders["transformer"]
    assert transformer.query_names_ == rois  # one query per ROI, from the dataset's labels
    assert transformer.settings_.in_shape == (8, 8, 8) and transformer.settings_.d_model == 16
    incontext = result.encoders["incontext"]
    assert incontext.n_features_in_ == EMBED_DIM  # it read the semantic vectors, not the maps
    assert len(incontext.history_) == 3  # meta-trained here, with the readout settings

    out = result.save(tmp_path / "fit")
    saved = pd.read_csv(out / "roi_table.csv")
    assert set(saved["model"]) == {"ridge", "transformer", "incontext"}
    x_test = study["maps"][:7]
    loaded = TransformerEncoder.load(out / "models" / "transformer.pt")
    assert np.array_equal(loaded.predict(x_test), transformer.predict(x_test))
    assert loaded.query_names_ == transformer.query_names_
    emb = study["semantic"]
    support_y = np.random.default_rng(0).standard_normal((20, ds.n_voxels))
    support = {"support_X": emb[:20], "support_Y": support_y}
    loaded_ic = InContextEncoder.load(out / "models" / "incontext.pt")
    assert np.array_equal(loaded_ic.predict(emb, **support), incontext.predict(emb, **support))
    loaded_ridge = VoxelRidgeCV.load(out / "models" / "ridge.pt")
    flat = study["maps"].reshape(len(study["maps"]), -1)
    np.testing.assert_array_equal(
        loaded_ridge.predict(flat), result.encoders["ridge"].predict(flat)
    )


def test_a_pretrained_incontext_encoder_is_used_as_given(study, pretrained):
    ds = study["datasets"][0]
    before, history = _state(pretrained), list(pretrained.history_)
    result = compare_encoders(
        ds,
        ["ridge", ("incontext", pretrained)],
        features=study["maps"],
        semantic=study["semantic"],
        device="cpu",
        n_boot=50,
    )
    assert result.encoders["incontext"] is pretrained
    after = pretrained.model_.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # not refitted
    assert pretrained.history_ == history
    assert np.isfinite(result.scores["incontext"]).all()
    # a held-out subject's voxels, from a model meta-trained on another subject's
    category = np.isin(result.roi_labels, ["FFA", "PPA", "LOC", "VWFA"])
    assert np.nanmean(result.scores["incontext"][category]) > 0.0


@pytest.mark.parametrize("semantic_dim", [10, None])
def test_a_pretrained_encoder_of_another_embedding_is_refused(study, pretrained, semantic_dim):
    """Semantic vectors of another length, or none (it would get the 512 flattened maps)."""
    semantic = None if semantic_dim is None else study["semantic"][:, :semantic_dim]
    given = 512 if semantic_dim is None else semantic_dim
    with pytest.raises(
        InputError, match=rf"meta-trained on embeddings of length 12 but .* gives it {given}"
    ) as info:
        compare_encoders(
            study["datasets"][0],
            [("incontext", pretrained)],
            features=study["maps"],
            semantic=semantic,
            device="cpu",
            n_boot=10,
        )
    assert "\n" not in str(info.value)


# ------------------------------------------------------------------ the command
@pytest.fixture(scope="module")
def files(study, pretrained, tmp_path_factory):
    """Subject 0 as NIfTI files, the features and semantic vectors as .npy, the model as .pt."""
    folder = tmp_path_factory.mktemp("deep")
    paths = study["sim"].subjects[0].write_nifti(folder / "sub-01")
    np.save(folder / "maps.npy", study["maps"])
    np.save(folder / "emb.npy", study["semantic"])
    pretrained.save(folder / "ic.pt")
    args = ["fit-encoder", "--betas", str(paths["betas"]), "--trials", str(paths["trials"])]
    args += ["--mask", str(paths["mask"]), "--labels", str(paths["rois"])]
    args += ["--label-names", str(paths["roi_names"]), "--features", str(folder / "maps.npy")]
    args += ["--semantic", str(folder / "emb.npy"), "--device", "cpu", "-q"]
    return folder, args


def test_fit_encoder_with_both_deep_models(files, pretrained, tmp_path, capsys):
    folder, args = files
    out = tmp_path / "fit"
    models = ["--model", "ridge", "transformer", "incontext"]
    cmd = [*args, *models, "--incontext-model", str(folder / "ic.pt"), "--epochs", "5"]
    assert main([*cmd, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "transformer" in printed and "incontext" in printed and "FFA" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["encoders"]) == {"ridge", "transformer", "incontext"}
    transformer = TransformerEncoder.load(out / "models" / "transformer.pt")
    assert len(transformer.history_) == 5  # --epochs reached the transformer
    assert transformer.query_names_ == sorted(
        set(metrics["encoders"]["ridge"]["per_roi"]) - {"all"}
    )
    incontext = InContextEncoder.load(out / "models" / "incontext.pt")
    saved, given = incontext.model_.state_dict(), pretrained.model_.state_dict()
    assert all(torch.equal(saved[k], given[k]) for k in given)  # the given model, not refitted
    assert incontext.history_ == pretrained.history_


def test_fit_encoder_refuses_incontext_model_without_incontext(files, tmp_path, capsys):
    folder, args = files
    cmd = [*args, "--model", "ridge", "--incontext-model", str(folder / "ic.pt")]
    assert main([*cmd, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "--incontext-model" in err and "add incontext to --model" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_fit_encoder_refuses_the_transformer_without_roi_labels(files, tmp_path, capsys):
    _, args = files
    i = args.index("--labels")
    cmd = [*args[:i], *args[i + 4 :], "--model", "transformer", "--epochs", "1"]  # no labels
    assert main([*cmd, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "routes by ROI, but the dataset has no ROI labels" in err and "--labels" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


# ------------------------------------------------------------------ surfaces
def test_the_transformer_gets_hemispheres_on_a_surface(tmp_path):
    from data_loaders.fmri.surface import load_surface_betas, write_surface_betas

    rng = np.random.default_rng(0)
    n_stimuli, n_vertices = 40, 60
    maps = rng.standard_normal((n_stimuli, 2, 3, 3)).astype(np.float32)
    ids = np.tile(np.arange(n_stimuli), 2)
    betas, labels = {}, {}
    for h in ("left", "right"):
        w = rng.standard_normal((18, n_vertices))
        betas[h] = maps[ids].reshape(len(ids), -1) @ w + rng.standard_normal((80, n_vertices))
        betas[h] = betas[h].astype(np.float32)
        labels[h] = (np.arange(n_vertices) % 3).astype(np.int32)  # 0 = unlabelled, 1, 2
    files = write_surface_betas(tmp_path / "sub-01", betas["left"], betas["right"])
    surf = load_surface_betas(
        files["left"][0],
        files["right"][0],
        ids,
        labels=labels,
        label_names={1: "dorsal", 2: "ventral"},
    )
    ds = surf.to_dataset()
    assert ds.geometry.kind == "surface"
    enc = TransformerEncoder(d_model=8, n_heads=2, ffn_dim=16, epochs=2, device="cpu")
    result = compare_encoders(ds, [("transformer", enc)], features=maps, device="cpu", n_boot=10)
    assert result.encoders["transformer"] is enc
    assert enc.query_names_ == [
        "dorsal-left",
        "dorsal-right",
        "ventral-left",
        "ventral-right",
        "rest-left",
        "rest-right",
    ]
    # each vertex is served by the query of its own ROI and hemisphere
    names = np.asarray(enc.query_names_)[enc.voxel_query_]
    roi = np.where(ds.roi_labels == "", "rest", ds.roi_labels)
    expected = np.char.add(np.char.add(roi.astype(str), "-"), ds.geometry.hemi.astype(str))
    np.testing.assert_array_equal(names, expected)
