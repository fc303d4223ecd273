"""ALAMO networks and loss: output shapes, deep-supervision heads, norms, slices."""

from __future__ import annotations

import pytest
import torch

from mrilearn.losses.segmentation import DeepSupervisedDiceCE
from mrilearn.models.unet import DenseUnet, PlainUnet

pytestmark = pytest.mark.usefixtures("single_thread")


NORMS = ["none", "batch", "batch_train", "instance", "layer"]


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("slices", [1, 5])
@pytest.mark.parametrize("make", [lambda **k: DenseUnet(growth=4, units=2, **k),
                                  lambda **k: PlainUnet(features=4, **k)])  # fmt: skip
def test_output_shapes_and_deep_supervision_only_in_training(make, slices, norm):
    net = make(in_slices=slices, classes=3, norm=norm)
    x = torch.randn(2, slices, 16, 24)
    outs = net.train()(x)
    # main output at full resolution, then one head per coarser decoder level (1/2, 1/4, 1/8)
    assert [tuple(o.shape) for o in outs] == [
        (2, 3, slices, 16 // f, 24 // f) for f in (1, 2, 4, 8)
    ]
    out = net.eval()(x)
    assert isinstance(out, torch.Tensor) and out.shape == (2, 3, slices, 16, 24)


def test_no_deep_supervision_and_size_check():
    net = DenseUnet(growth=4, units=1, in_slices=2, classes=2, deep_supervision=False)
    assert net.train()(torch.randn(1, 2, 16, 16)).shape == (1, 2, 2, 16, 16)
    with pytest.raises(ValueError, match="divisible by 8"):
        net(torch.randn(1, 2, 20, 16))


def test_batch_train_norm_uses_batch_statistics_at_inference():
    net = DenseUnet(growth=4, units=1, in_slices=1, classes=2, norm="batch_train").eval()
    x = torch.randn(2, 1, 16, 16)
    a = net(x)
    b = net(torch.cat([x[:1], 5 * x[1:]]))
    assert not torch.allclose(a[0], b[0])  # batch statistics, not running averages


def test_deep_supervision_loss_weights_and_learning():
    loss = DeepSupervisedDiceCE()
    target = torch.zeros(2, 1, 3, 16, 16, dtype=torch.long)
    target[..., 4:12, 4:12] = 1
    perfect = torch.nn.functional.one_hot(target[:, 0], 2).permute(0, 4, 1, 2, 3).float() * 20
    coarse = perfect[..., ::2, ::2]
    assert loss(perfect, target) < 0.01
    assert loss([perfect, coarse], target) < 0.01
    assert loss([perfect, -coarse], target) > loss(perfect, target)


def test_he_init_keeps_the_logits_from_shrinking():
    # PyTorch's default init gave logits with std ≈ 0.16 for unit-variance input (k=8, no norm)
    torch.manual_seed(0)
    net = DenseUnet(growth=8, in_slices=5, units=3, deep_supervision=False).eval()
    with torch.no_grad():
        logits = net(torch.randn(2, 5, 32, 32))
    assert logits.std() > 0.5


class _Oracle(torch.nn.Module):
    """Reads the class of every input slice off its intensity: output slice i ↔ input slice i."""

    in_slices, classes, levels = 5, 4, 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        onehot = torch.nn.functional.one_hot(x.round().long().clamp(0, 3), self.classes)
        return onehot.permute(0, 4, 1, 2, 3).float() * 10


def test_slab_layout_round_trips_through_multiview_inference():
    from mrilearn.inference.multiview import MultiView

    labels = torch.randint(0, 4, (9, 7, 11), generator=torch.Generator().manual_seed(0))
    result = MultiView()(_Oracle(), labels.numpy().astype("float32"))
    for view, pred in result.views.items():
        assert (pred == labels.numpy()).all(), view
    assert (result.labels == labels.numpy()).all()
