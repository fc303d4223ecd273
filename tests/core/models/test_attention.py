"""3-D self-attention (§8.3.2): identity at start, maps sum to one, infer --attention."""

from __future__ import annotations

import pytest
import torch

from mrilearn.cli import main
from mrilearn.config import load_config
from mrilearn.io import read_volume
from mrilearn.models import MDCSRN
from mrilearn.models.attention import SelfAttention3d
from mrilearn.runs import train_run

pytestmark = pytest.mark.usefixtures("single_thread")


def test_block_is_identity_at_init_and_rows_sum_to_one():
    torch.manual_seed(0)
    block = SelfAttention3d(16)
    block.keep_attention = True
    x = torch.randn(2, 16, 6, 8, 5)
    torch.testing.assert_close(block(x), x, rtol=0, atol=0)
    assert block.attention.shape == (2, 3 * 4 * 3, 3 * 4 * 3)  # pooled 2x, ceil
    torch.testing.assert_close(block.attention.sum(-1), torch.ones(2, 36))
    m = block.query_map((5, 7, 4))
    assert m.shape == (3, 4, 3) and m.sum().item() == pytest.approx(1.0, abs=1e-5)
    block.gamma.data.fill_(1.0)
    assert not torch.equal(block(x), x)


@pytest.mark.parametrize("where", ["mid", "last"])
def test_mdcsrn_with_attention_matches_plain_network_at_init(where):
    torch.manual_seed(0)
    plain = MDCSRN(blocks=2, units=2, growth=4, norm="none")
    torch.manual_seed(0)
    attn = MDCSRN(blocks=2, units=2, growth=4, norm="none", attention=where)
    attn.load_state_dict({**attn.state_dict(), **plain.state_dict()})
    x = torch.randn(1, 1, 8, 8, 8)
    torch.testing.assert_close(attn(x), plain(x))


def test_infer_writes_the_attention_map(config_file, tmp_path, sr_folder):
    cfg = load_config(
        config_file(
            model={"attention": "mid"},
            train={"iterations": 2, "val_every": 0, "checkpoint_every": 0},
        )
    )
    run = train_run(cfg, resume=False, overwrite=False, devices=1)
    out = tmp_path / "sr.nii.gz"
    src = sorted(sr_folder.iterdir())[0]
    assert main(["infer", "--run", str(run), str(src), str(out), "--attention", "10,9,11"]) == 0
    amap = read_volume(tmp_path / "sr_attention_10_9_11.nii.gz")
    assert amap.data.shape == (20, 20, 20) and amap.data.min() >= 0
    assert float(amap.data.sum()) == pytest.approx(1.0, abs=1e-4)
    assert (tmp_path / "sr_attention_10_9_11.png").is_file()
    assert main(["infer", "--run", str(run), str(src), str(out), "--attention", "1,2"]) == 2
