"""torch_models.py — PyTorch definitions of cnn.c's models, the oracle of the parity tests.

Each class builds the same network as its C family in src/models/, with identical state_dict keys and
shapes (so a cnn.c checkpoint loads with load_state_dict(strict=True) and PyTorch weights load into cnn.c)
and the same initialization rules. One class per family; `build` maps cnn.c's model names to them.

    import torch_models
    model = torch_models.build("resnet20", 3, 32, 32, 10)
    model = torch_models.build("convnet", 1, 28, 28, 10, bn=True, dropout=0.5)
"""
import torch
from torch import nn


class ConvNet(nn.Module):
    """The TP network of seed 002 (src/models/convnet.c): [Conv2d 5×5 pad 2, (BatchNorm2d), ReLU,
    MaxPool2d(2, 2)] × 3 at widths 32, 64, 64, then Linear(flat, 1000), ReLU, (Dropout), Linear(1000, classes).
    Layers are nn.Sequential indices, so with bn the convolutions are features.0/4/8."""

    WIDTHS = (32, 64, 64)

    def __init__(self, in_c=1, h=28, w=28, classes=10, bn=False, dropout=0.0):
        super().__init__()
        layers, c = [], in_c
        for width in self.WIDTHS:
            layers.append(nn.Conv2d(c, width, 5, padding=2))
            if bn:
                layers.append(nn.BatchNorm2d(width))
            layers += [nn.ReLU(), nn.MaxPool2d(2, 2)]
            c, h, w = width, h // 2, w // 2
        self.features = nn.Sequential(*layers)
        head = [nn.Linear(c * h * w, 1000), nn.ReLU()]
        if dropout > 0:
            head.append(nn.Dropout(dropout))
        head.append(nn.Linear(1000, classes))
        self.classifier = nn.Sequential(*head)

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


class BasicBlock(nn.Module):
    """He et al.'s basic block (src/nn/blocks.c nn_basic_block): conv3x3(stride)-BN-ReLU-conv3x3-BN,
    plus the input or a 1×1 conv + BN projection (downsample.0/1) where the shape changes, then ReLU.
    residual=False: the plain block, no shortcut at all."""

    def __init__(self, in_c, out_c, stride=1, residual=True):
        super().__init__()
        self.residual = residual
        self.conv1 = nn.Conv2d(in_c, out_c, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_c)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(out_c, out_c, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_c)
        self.downsample = None
        if residual and (stride != 1 or in_c != out_c):
            self.downsample = nn.Sequential(nn.Conv2d(in_c, out_c, 1, stride, 0, bias=False), nn.BatchNorm2d(out_c))

    def forward(self, x):
        y = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        if self.residual:
            y = y + (self.downsample(x) if self.downsample is not None else x)
        return self.relu(y)


def torchvision_init(model):
    """torchvision's ResNet initialization, which cnn.c's op_conv/op_batchnorm follow: convolutions
    kaiming_normal_(fan_out, relu), batch norm weight 1 and bias 0, linear layers PyTorch's default."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class PlainResidualNet(nn.Module):
    """Seed 001's plain and residual networks (src/models/plain_residual.c): conv1/bn1 3×3 to 16 channels,
    basic blocks blocks.0, blocks.1, ... along table 1 (a block that doubles the width halves the
    resolution), global average pooling, Dropout, fc."""

    # blocks per row of table 1: 16→16, 16→32, 32→32, 32→64, 64→64, 64→128, 128→128
    TABLE1 = {
        8: (0, 1, 0, 1, 0, 1, 0),
        14: (1, 1, 1, 1, 0, 1, 1),
        18: (1, 1, 1, 1, 1, 1, 1),
        34: (3, 1, 3, 1, 5, 1, 2),
        50: (6, 1, 5, 1, 5, 1, 5),
    }
    OUT_C = (16, 32, 32, 64, 64, 128, 128)

    def __init__(self, depth, residual, in_c=3, classes=10, dropout=0.5):
        super().__init__()
        self.conv1 = nn.Conv2d(in_c, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU()
        blocks, c = [], 16
        for row, count in enumerate(self.TABLE1[depth]):
            for _ in range(count):
                blocks.append(BasicBlock(c, self.OUT_C[row], 2 if row % 2 == 1 else 1, residual))
                c = self.OUT_C[row]
        self.blocks = nn.Sequential(*blocks)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(c, classes)
        torchvision_init(self)

    def forward(self, x):
        x = self.blocks(self.relu(self.bn1(self.conv1(x))))
        return self.fc(self.dropout(torch.flatten(self.avgpool(x), 1)))


class ResNetCifar(nn.Module):
    """The CIFAR ResNets of He et al. (src/models/resnet_cifar.c): conv1/bn1 3×3 to 16 channels, layer1..3
    of n basic blocks at 16, 32, 64 channels (depth 6n+2; the first block of layer2/3 has stride 2 and a
    projection shortcut), global average pooling, fc. Names as torchvision's ResNet."""

    def __init__(self, depth, in_c=3, classes=10):
        super().__init__()
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(in_c, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU()
        c = 16
        for s, width in enumerate((16, 32, 64)):
            blocks = []
            for b in range(n):
                blocks.append(BasicBlock(c, width, 2 if s > 0 and b == 0 else 1))
                c = width
            setattr(self, f"layer{s + 1}", nn.Sequential(*blocks))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, classes)
        torchvision_init(self)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def build(name, in_c, h, w, classes, bn=False, dropout=0.0):
    """The PyTorch twin of cnn.c's model `name` for inputs in_c×h×w. bn applies to convnet only; dropout
    to convnet (a layer only when > 0) and plain/residual (always a layer, as in cnn.c)."""
    if name == "convnet":
        return ConvNet(in_c, h, w, classes, bn=bn, dropout=dropout)
    for prefix, residual in (("plain", False), ("residual", True)):
        if name.startswith(prefix) and name[len(prefix):].isdigit() and int(name[len(prefix):]) in PlainResidualNet.TABLE1:
            return PlainResidualNet(int(name[len(prefix):]), residual, in_c, classes, dropout)
    if name.startswith("resnet") and name[6:] in ("20", "32", "44", "56", "110"):
        return ResNetCifar(int(name[6:]), in_c, classes)
    raise ValueError(f"unknown model {name!r}")


def biases_before_batchnorm(model):
    """Names of convolution biases that a BatchNorm2d follows directly inside an nn.Sequential. In
    training mode batch norm subtracts the batch mean, so their gradient is zero up to rounding: a
    relative comparison of such a gradient compares rounding noise with rounding noise."""
    names = []
    for prefix, m in model.named_modules():
        if not isinstance(m, nn.Sequential):
            continue
        layers = list(m.children())
        for i in range(len(layers) - 1):
            if isinstance(layers[i], nn.Conv2d) and layers[i].bias is not None and isinstance(layers[i + 1], nn.BatchNorm2d):
                names.append(f"{prefix}.{i}.bias" if prefix else f"{i}.bias")
    return names
