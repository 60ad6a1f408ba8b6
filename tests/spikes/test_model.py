"""The Neuroformer network: causality, masking, fused vs explicit attention, cached generation."""

import pytest
import torch

from neuro.errors import InputError
from neuro.spikes.model import PAPER_SIZE, NeuroformerConfig, NeuroformerModule

N, NDT, L, P = 7, 6, 9, 11  # unequal sizes: a transposed axis cannot pass


def _model(**over):
    torch.manual_seed(0)
    cfg = dict(
        n_neurons=N,
        n_dt=NDT,
        block_size=L,
        past_block_size=P,
        d_model=16,
        n_heads=4,
        n_self_layers=2,
        n_cross_layers=2,
        frame_shape=(3, 10, 12),
        n_behavior=2,
        n_behavior_out=1,
        contrastive_dim=8,
    )
    cfg.update(over)
    return NeuroformerModule(NeuroformerConfig(**cfg)).eval()


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(1)
    b = 3
    past_ids = torch.randint(0, N, (b, P), generator=g)
    past_ids[:, -4:] = N + 2  # padding
    return {
        "ids": torch.randint(0, N, (b, L), generator=g),
        "dts": torch.randint(0, NDT - 1, (b, L), generator=g),
        "past_ids": past_ids,
        "past_dts": torch.randint(0, NDT - 1, (b, P), generator=g),
        "frames": torch.randn(b, 3, 10, 12, generator=g),
        "behavior": torch.randn(b, 2, generator=g),
        "behavior_target": torch.randn(b, 1, generator=g),
    }


def _forward(m, b, **kw):
    return m(b["ids"], b["dts"], b["past_ids"], b["past_dts"], b["frames"], b["behavior"], **kw)


def test_shapes_and_specials(batch):
    m = _model()
    out = _forward(m, batch)
    assert out["id_logits"].shape == (3, L, N + 3)
    assert out["dt_logits"].shape == (3, L, NDT)
    assert out["behavior"].shape == (3, 1)
    assert out["neural_embedding"].shape == out["frame_embedding"].shape == (3, 8)
    c = m.config
    assert (c.sos_id, c.eos_id, c.pad_id, c.n_ids) == (N, N + 1, N + 2, N + 3)


@pytest.mark.parametrize("where", [4, L - 1])
def test_a_later_token_leaves_earlier_logits_unchanged(batch, where):
    m = _model()
    out = _forward(m, batch)
    changed = dict(batch)
    changed["ids"] = batch["ids"].clone()
    changed["ids"][:, where] = (changed["ids"][:, where] + 1) % N
    changed["dts"] = batch["dts"].clone()
    changed["dts"][:, where] += 1
    out2 = _forward(m, changed)
    for key in ("id_logits", "dt_logits"):
        torch.testing.assert_close(out[key][:, :where], out2[key][:, :where])
        assert not torch.allclose(out[key][:, where:], out2[key][:, where:])


def test_past_padding_is_masked(batch):
    m = _model()
    out = _forward(m, batch)
    other = dict(batch)
    other["past_dts"] = batch["past_dts"].clone()
    other["past_dts"][:, -4:] = 3  # what padding slots carry must not matter
    torch.testing.assert_close(out["id_logits"], _forward(m, other)["id_logits"])
    w = _forward(m, batch, return_weights=True)["past_attention"]
    assert w.shape == (3, 4, L, P)
    assert float(w[..., -4:].detach().abs().max()) == 0.0
    torch.testing.assert_close(w.sum(-1), torch.ones(3, 4, L))


def test_explicit_weights_match_fused_attention(batch):
    m = _model()
    torch.testing.assert_close(
        _forward(m, batch)["id_logits"],
        _forward(m, batch, return_weights=True)["id_logits"],
        atol=1e-5,
        rtol=1e-5,
    )


def test_plain_attention_switch_gives_the_fused_numbers(batch):
    from neuro.spikes.model import Attention

    m = _model()
    fused = _forward(m, batch)["id_logits"]
    attention = [a for a in m.modules() if isinstance(a, Attention)]
    assert attention and all(a.fused for a in attention)
    for a in attention:
        a.fused = False
    torch.testing.assert_close(_forward(m, batch)["id_logits"], fused, atol=1e-5, rtol=1e-5)
    assert "fused" not in str(list(m.state_dict()))  # a setting, not a saved weight


@pytest.mark.parametrize("stop", [0, 1])
def test_hidden_then_head_features_is_forward(batch, stop):
    m = _model(n_final_layers=2)
    b = (batch["ids"], batch["dts"], batch["past_ids"], batch["past_dts"])
    h = m.hidden(*b, batch["frames"], batch["behavior"], stop=stop)
    torch.testing.assert_close(m.head_features(h, stop=stop), _forward(m, batch)["features"])
    with pytest.raises(InputError, match="stop must lie in"):
        m.hidden(*b, batch["frames"], batch["behavior"], stop=2)


@pytest.mark.parametrize("greedy", [True, False])
def test_cached_generation_equals_rerunning_the_prefix(batch, greedy):
    m = _model()
    args = (batch["past_ids"], batch["past_dts"], batch["frames"], batch["behavior"])
    a = m.generate(*args, greedy=greedy, generator=torch.Generator().manual_seed(4))
    b = m.generate(
        *args, greedy=greedy, generator=torch.Generator().manual_seed(4), use_cache=False
    )
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert (a[0][:, 0] == N).all()  # SOS first
    assert not ((a[0][:, 1:] == N) | False).any()  # SOS is never generated


def test_generation_stops_and_pads_after_eos():
    m = _model(frame_shape=None, n_behavior=0, contrastive_dim=0)
    with torch.no_grad():  # make EOS the only likely id
        m.id_head.bias.fill_(-50.0)
        m.id_head.bias[N + 1] = 50.0
    ids, _ = m.generate(torch.zeros(2, P, dtype=torch.long), torch.zeros(2, P, dtype=torch.long))
    assert ids.tolist() == [[N, N + 1]] * 2


def test_loss_ignores_padding_and_trains(batch):
    m = _model().train()
    padded = dict(batch)
    padded["ids"] = batch["ids"].clone()
    padded["ids"][:, -3:] = N + 2
    a = m.eval().loss(padded)
    other = dict(padded)
    other["dts"] = padded["dts"].clone()
    other["dts"][:, -3:] = 0
    b = m.loss(other)
    torch.testing.assert_close(a["loss"], b["loss"])
    assert set(a) == {"loss", "id_loss", "dt_loss", "behavior_loss", "contrastive_loss"}
    # a few steps on one batch lower the loss
    m.train()
    opt = torch.optim.AdamW(m.parameters(), lr=3e-3)
    torch.manual_seed(0)
    first = None
    for _ in range(20):
        loss = m.loss(batch)["loss"]
        first = float(loss) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(m.eval().loss(batch)["loss"]) < 0.7 * first


def test_paper_size_has_about_24m_parameters():
    cfg = NeuroformerConfig(
        n_neurons=400, n_dt=20, frame_shape=(3, 30, 100), contrastive_dim=256, **PAPER_SIZE
    )
    n = sum(p.numel() for p in NeuroformerModule(cfg).parameters())
    assert 20e6 < n < 28e6


def test_bad_sizes_and_missing_context(batch):
    with pytest.raises(InputError, match="multiple of n_heads"):
        NeuroformerConfig(n_neurons=3, n_dt=4, d_model=18, n_heads=4).check()
    with pytest.raises(InputError, match="n_neurons must be >= 1"):
        NeuroformerModule(NeuroformerConfig(n_neurons=0, n_dt=4))
    m = _model()
    with pytest.raises(InputError, match="give frames"):
        m(batch["ids"], batch["dts"], batch["past_ids"], batch["past_dts"])
    long = torch.zeros(3, L + 1, dtype=torch.long)
    with pytest.raises(InputError, match="exceed the model's block sizes"):
        m(long, long, batch["past_ids"], batch["past_dts"], batch["frames"], batch["behavior"])
    with pytest.raises(InputError, match="max_tokens"):
        m.generate(batch["past_ids"], batch["past_dts"], batch["frames"], batch["behavior"], 0)
