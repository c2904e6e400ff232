"""OFA's image backbone: the first three stages of a ResNet (stride 16, 1024 channels).

Module names match the released checkpoints (``embed_images.layer1.0.conv1``...).
:meth:`ResNetBackbone.fuse_batchnorm` folds each inference-mode BatchNorm into
the convolution before it, which saves a pass over every feature map.
"""

from __future__ import annotations

import torch
from torch import nn


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        out = planes * self.expansion
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.downsample: nn.Sequential | None = None
        if stride != 1 or inplanes != out:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, out, 1, stride=stride, bias=False), nn.BatchNorm2d(out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        y = torch.relu(self.bn1(self.conv1(x)))
        y = torch.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return torch.relu(y + identity)


class ResNetBackbone(nn.Module):
    """Stem plus three Bottleneck stages; (B, 3, H, W) -> (B, 1024, H/16, W/16)."""

    def __init__(self, blocks: tuple[int, int, int]) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        inplanes = 64
        for index, (planes, count, stride) in enumerate(zip((64, 128, 256), blocks, (1, 2, 2), strict=False), 1):
            stage = [Bottleneck(inplanes, planes, stride)]
            inplanes = planes * Bottleneck.expansion
            stage += [Bottleneck(inplanes, planes) for _ in range(count - 1)]
            setattr(self, f"layer{index}", nn.Sequential(*stage))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(torch.relu(self.bn1(self.conv1(x))))
        return self.layer3(self.layer2(self.layer1(x)))

    @torch.no_grad()
    def fuse_batchnorm(self) -> None:
        """Fold every BatchNorm (running statistics) into the convolution that feeds it."""
        _fold(self.conv1, self.bn1)
        self.bn1 = nn.Identity()
        for module in self.modules():
            if isinstance(module, Bottleneck):
                for i in (1, 2, 3):
                    _fold(getattr(module, f"conv{i}"), getattr(module, f"bn{i}"))
                    setattr(module, f"bn{i}", nn.Identity())
                if module.downsample is not None:
                    _fold(module.downsample[0], module.downsample[1])
                    module.downsample[1] = nn.Identity()


def _fold(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
    # in float64, so that the folded weights are rounded once
    scale = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)
    weight = conv.weight.double() * scale.reshape(-1, 1, 1, 1)
    bias = bn.bias.double() - bn.running_mean.double() * scale
    if conv.bias is not None:
        bias = bias + conv.bias.double() * scale
    conv.weight.copy_(weight.to(conv.weight.dtype))
    conv.bias = nn.Parameter(bias.to(conv.weight.dtype), requires_grad=False)
