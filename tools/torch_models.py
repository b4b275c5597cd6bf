"""torch_models.py — PyTorch definitions of cnn.c's models, the oracle of the parity tests.

Each class builds the same network as its C family in src/models/, with identical state_dict keys and
shapes (so a cnn.c checkpoint loads with load_state_dict(strict=True) and PyTorch weights load into cnn.c)
and the same initialization rules. One class per family; `build` maps cnn.c's model names to them.

    import torch_models
    model = torch_models.build("resnet20", 3, 32, 32, 10)
    model = torch_models.build("convnet", 1, 28, 28, 10, bn=True, dropout=0.5)
    model = torch_models.build("resnet50", 3, 64, 64, 10)          # torchvision's own, its own init
    model = torch_models.build("resnet110", 3, 32, 32, 10, stochastic_depth=0.5)
    model = torch_models.build("googlenet", 3, 224, 224, 1000, dropout=0.2, dropout_aux=0.7)

torchvision's models (resnet18..152, resnext50_32x4d, wide_resnet50_2, vgg11..19[_bn], googlenet,
efficientnet_b0) are torchvision's constructors and initialization, adapted to the input as cnn.c adapts them
(see torchvision_model, googlenet, efficientnet_b0). The other residual families (pre-activation,
squeeze-and-excitation, highway, stochastic depth, Ghost-ResNet) are defined here, and so is GhostNet as timm's
ghostnet_100 (timm is not a Debian package). The ReLUs defined here are nn.ReLU modules called once per use and
never in place; the parity tests replay ReLU decisions through torch.nn.functional.relu, which nn.ReLU calls
and torchvision's GoogLeNet calls directly. The RegNets of Xu et al. (ConvLSTM/ConvGRU regulators) are defined
here too:

    model = torch_models.build("regnet20", 3, 32, 32, 10, regulator="convgru", regulated_stages=(1, 2))
"""
import math

import torch
import torchvision
from torch import nn
from torchvision.models import efficientnet as tv_efficientnet
from torchvision.models.googlenet import BasicConv2d


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


class DropPath(nn.Module):
    """Stochastic depth on a residual branch (cnn.c's op_drop_path): torchvision.ops.StochasticDepth(p, "row"),
    whole samples dropped with probability p in training and survivors scaled by 1/(1-p); identity in eval."""

    def __init__(self, p):
        super().__init__()
        self.p = p

    def forward(self, x):
        return torchvision.ops.stochastic_depth(x, self.p, "row", self.training)


def drop_rates(last, n):
    """Stochastic depth's linear rule (src/nn/blocks.c nn_drop_rate): 0 at the first of n blocks, `last` at the last."""
    return [last * i / (n - 1) if n > 1 else last for i in range(n)]


def residual_tail(block, channels, se_reduction=0, drop=0.0):
    """Give a residual block what cnn.c's blocks do to their branch before the sum (src/nn/blocks.c merge):
    block.se, torchvision's SqueezeExcitation (1×1 convs fc1/fc2, PyTorch's default init) when se_reduction > 0,
    and block.drop_path (stochastic depth) when drop > 0; apply_tail(block, y) applies them in that order."""
    block.se = torchvision.ops.SqueezeExcitation(channels, max(1, channels // se_reduction)) if se_reduction else None
    block.drop_path = DropPath(drop) if drop > 0 else None


def apply_tail(block, y):
    if block.se is not None:
        y = block.se(y)
    return block.drop_path(y) if block.drop_path is not None else y


class BasicBlock(nn.Module):
    """He et al.'s basic block (src/nn/blocks.c nn_basic_block): conv3x3(stride)-BN-ReLU-conv3x3-BN,
    plus the input or a 1×1 conv + BN projection (downsample.0/1) where the shape changes, then ReLU.
    residual=False: the plain block, no shortcut at all. se_reduction/drop: see residual_tail."""

    def __init__(self, in_c, out_c, stride=1, residual=True, se_reduction=0, drop=0.0):
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
        residual_tail(self, out_c, se_reduction, drop)

    def branch(self, x):
        return self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))

    def forward(self, x):
        y = self.branch(x)
        if self.residual:
            y = apply_tail(self, y) + (self.downsample(x) if self.downsample is not None else x)
        return self.relu(y)


class PreActBlock(nn.Module):
    """The pre-activation block of He et al. 2016, "Identity mappings" (src/nn/blocks.c nn_preact_block):
    a = ReLU(bn1(x)); conv1 3×3 (stride), bn2, ReLU, conv2 3×3; plus x, or a 1×1 conv downsample.0 of a
    where the shape changes; nothing after the sum."""

    def __init__(self, in_c, out_c, stride=1, se_reduction=0, drop=0.0):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_c)
        self.relu = nn.ReLU()
        self.conv1 = nn.Conv2d(in_c, out_c, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_c)
        self.conv2 = nn.Conv2d(out_c, out_c, 3, 1, 1, bias=False)
        self.downsample = None
        if stride != 1 or in_c != out_c:
            self.downsample = nn.Sequential(nn.Conv2d(in_c, out_c, 1, stride, 0, bias=False))
        residual_tail(self, out_c, se_reduction, drop)

    def forward(self, x):
        a = self.relu(self.bn1(x))
        y = self.conv2(self.relu(self.bn2(self.conv1(a))))
        return apply_tail(self, y) + (self.downsample(a) if self.downsample is not None else x)


class HighwayBlock(BasicBlock):
    """The gated block of highway20 (src/nn/blocks.c nn_highway_block): F = BasicBlock's branch, carry = x or
    its conv + BN projection, T = sigmoid(gate(x)) with gate a 1×1 conv with bias (the block's stride), output
    ReLU(F·T + carry·(1 − T)). The gate has PyTorch's default conv init and its bias starts at GATE_BIAS."""

    GATE_BIAS = -1.0

    def __init__(self, in_c, out_c, stride=1):
        super().__init__(in_c, out_c, stride)
        self.gate = nn.Conv2d(in_c, out_c, 1, stride, 0, bias=True)
        self.reset_gate()

    def reset_gate(self):
        self.gate.reset_parameters()
        nn.init.constant_(self.gate.bias, self.GATE_BIAS)

    def forward(self, x):
        carry = self.downsample(x) if self.downsample is not None else x
        t = torch.sigmoid(self.gate(x))
        return self.relu(self.branch(x) * t + carry * (1 - t))


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

    def __init__(self, depth, residual, in_c=3, classes=10, dropout=0.5, stochastic_depth=0.0):
        super().__init__()
        self.conv1 = nn.Conv2d(in_c, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU()
        blocks, c = [], 16
        drops = iter(drop_rates(stochastic_depth, sum(self.TABLE1[depth])))
        for row, count in enumerate(self.TABLE1[depth]):
            for _ in range(count):
                blocks.append(BasicBlock(c, self.OUT_C[row], 2 if row % 2 == 1 else 1, residual, drop=next(drops)))
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
    """The CIFAR layout of He et al. (src/models/resnet_cifar.c): conv1 3×3 to 16 channels, layer1..3 of n blocks
    at 16, 32, 64 channels (depth 6n+2; the first block of layer2/3 has stride 2 and a projection shortcut),
    global average pooling, fc. Names as torchvision's ResNet. kind: "basic" (resnetN), "se" (se_resnetN,
    reduction 16), "preact" (preact_resnetN: conv1 alone as the stem, a final BN-ReLU named bn), "highway"
    (highway20) or "ghost" (ghost_resnet56). stochastic_depth: the last block's drop probability, linear from 0
    at the first block."""

    def __init__(self, depth, in_c=3, classes=10, kind="basic", stochastic_depth=0.0):
        super().__init__()
        n = (depth - 2) // 6
        self.kind = kind
        self.conv1 = nn.Conv2d(in_c, 16, 3, 1, 1, bias=False)
        if kind != "preact":
            self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU()
        c, drops = 16, iter(drop_rates(stochastic_depth, 3 * n))
        for s, width in enumerate((16, 32, 64)):
            blocks = []
            for b in range(n):
                stride = 2 if s > 0 and b == 0 else 1
                if kind == "highway":
                    blocks.append(HighwayBlock(c, width, stride))
                elif kind == "preact":
                    blocks.append(PreActBlock(c, width, stride, drop=next(drops)))
                elif kind == "ghost":
                    blocks.append(GhostBasicBlock(c, width, stride, drop=next(drops)))
                else:
                    blocks.append(BasicBlock(c, width, stride, se_reduction=16 if kind == "se" else 0, drop=next(drops)))
                c = width
            setattr(self, f"layer{s + 1}", nn.Sequential(*blocks))
        if kind == "preact":
            self.bn = nn.BatchNorm2d(64)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, classes)
        torchvision_init(self)
        reset_special(self)

    def forward(self, x):
        x = self.conv1(x)
        if self.kind != "preact":
            x = self.relu(self.bn1(x))
        x = self.layer3(self.layer2(self.layer1(x)))
        if self.kind == "preact":
            x = self.relu(self.bn(x))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def reset_special(model):
    """After torchvision_init (which gives every conv kaiming init): SE convs back to PyTorch's default, highway
    gates to theirs, as cnn.c initializes them."""
    for m in model.modules():
        if isinstance(m, torchvision.ops.SqueezeExcitation):
            m.fc1.reset_parameters()
            m.fc2.reset_parameters()
        elif isinstance(m, HighwayBlock):
            m.reset_gate()


class PreActResNet18(nn.Module):
    """Pre-activation ResNet-18 in the ImageNet layout (src/models/resnet.c): conv1 (7×7/2 and a 3×3/2 max pool,
    or the small stem, see torchvision_model) without BN-ReLU (the first block pre-activates it), layer1..4 of
    two PreActBlocks at 64..512 channels (strides 1, 2, 2, 2), a final BN-ReLU named bn, pooling, fc."""

    def __init__(self, in_c=3, h=224, w=224, classes=1000, stochastic_depth=0.0):
        super().__init__()
        small = small_input(h, w)
        self.conv1 = nn.Conv2d(in_c, 64, 3 if small else 7, 1 if small else 2, 1 if small else 3, bias=False)
        self.maxpool = nn.Identity() if small else nn.MaxPool2d(3, 2, 1)
        c, drops = 64, iter(drop_rates(stochastic_depth, 8))
        for layer in range(4):
            width = 64 << layer
            first = PreActBlock(c, width, 2 if layer else 1, drop=next(drops))
            setattr(self, f"layer{layer + 1}", nn.Sequential(first, PreActBlock(width, width, drop=next(drops))))
            c = width
        self.bn = nn.BatchNorm2d(512)
        self.relu = nn.ReLU()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, classes)
        torchvision_init(self)

    def forward(self, x):
        x = self.maxpool(self.conv1(x))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(self.relu(self.bn(x))), 1))


class SEBottleneck(torchvision.models.resnet.Bottleneck):
    """torchvision's Bottleneck with squeeze-and-excitation (reduction 16) on the branch after bn3, before the
    sum (Hu et al.): se_resnet50 is torchvision's ResNet built from these blocks."""

    def __init__(self, inplanes, planes, *args, **kwargs):
        super().__init__(inplanes, planes, *args, **kwargs)
        residual_tail(self, planes * self.expansion, se_reduction=16)

    def forward(self, x):
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = apply_tail(self, self.bn3(self.conv3(y)))
        return self.relu(y + (self.downsample(x) if self.downsample is not None else x))


TORCHVISION = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d", "wide_resnet50_2",
               "vgg11", "vgg13", "vgg16", "vgg19", "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn")


def small_input(h, w):
    """cnn.c's rule (src/models/registry.c model_small_input): below 64×64 the ImageNet families take a small
    stem (ResNets: a 3×3 stride-1 conv1, no max pool; googlenet, efficientnet_b0, ghostnet: see theirs)."""
    return h < 64 or w < 64


def torchvision_model(name, in_c=3, h=224, w=224, classes=1000, dropout=0.5):
    """torchvision's model as cnn.c builds it for in_c×h×w: torchvision's constructor and initialization; then
    a first conv for in_c ≠ 3 channels (initialized as torchvision's); below 64×64 a ResNet's conv1 is 3×3
    stride 1 and its max pool an identity; a VGG max pool whose input is under 2×2 (it would output nothing)
    is an identity (src/models/vgg.c). ReLUs are made not in place."""
    if name == "se_resnet50":
        model = torchvision.models.resnet.ResNet(SEBottleneck, [3, 4, 6, 3], num_classes=classes)
        reset_special(model)
    elif name.startswith("vgg"):
        model = getattr(torchvision.models, name)(num_classes=classes, dropout=dropout)
    else:
        model = getattr(torchvision.models, name)(num_classes=classes)
    if name.startswith("vgg"):
        layers = model.features
        if in_c != 3:
            layers[0] = nn.Conv2d(in_c, 64, 3, padding=1)
            nn.init.kaiming_normal_(layers[0].weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(layers[0].bias)
        for i, m in enumerate(layers):
            if isinstance(m, nn.MaxPool2d):
                if h < 2 or w < 2:
                    layers[i] = nn.Identity()
                else:
                    h, w = h // 2, w // 2
    else:
        small = small_input(h, w)
        if small or in_c != 3:
            model.conv1 = nn.Conv2d(in_c, 64, 3 if small else 7, 1 if small else 2, 1 if small else 3, bias=False)
            nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
        if small:
            model.maxpool = nn.Identity()
    for m in model.modules():
        if isinstance(m, nn.ReLU):
            m.inplace = False
    return model

def googlenet(in_c, h, w, classes, dropout=0.2, dropout_aux=0.7):
    """torchvision's GoogLeNet with its auxiliary heads and initialization (transform_input off). For small
    images or other than 3 channels, conv1 is replaced as cnn.c does: a 3×3 stride-1 conv1 and no maxpool1
    when small, else conv1 with in_c input channels."""
    model = torchvision.models.GoogLeNet(num_classes=classes, aux_logits=True, transform_input=False,
                                         init_weights=True, dropout=dropout, dropout_aux=dropout_aux)
    small = small_input(h, w)
    if small or in_c != 3:
        conv = BasicConv2d(in_c, 64, kernel_size=3 if small else 7, stride=1 if small else 2, padding=1 if small else 3)
        nn.init.trunc_normal_(conv.conv.weight, mean=0.0, std=0.01, a=-2, b=2)
        model.conv1 = conv
    if small:
        model.maxpool1 = nn.Identity()
    return model


def efficientnet_b0(in_c, h, w, classes, dropout=0.2, stochastic_depth=0.2):
    """torchvision's efficientnet_b0 with the given classifier dropout and stochastic depth (its
    stochastic_depth_prob: block i of 16 drops with p·i/16); for small images the stem has stride 1, as in
    cnn.c."""
    setting, last = tv_efficientnet._efficientnet_conf("efficientnet_b0", width_mult=1.0, depth_mult=1.0)
    model = tv_efficientnet.EfficientNet(setting, dropout, stochastic_depth_prob=stochastic_depth,
                                         num_classes=classes, last_channel=last)
    if small_input(h, w) or in_c != 3:
        stem = nn.Conv2d(in_c, 32, 3, 1 if small_input(h, w) else 2, 1, bias=False)
        nn.init.kaiming_normal_(stem.weight, mode="fan_out")
        model.features[0][0] = stem
    return model


def make_divisible(v, divisor):
    """_make_divisible of torchvision, timm and the GhostNet code (src/nn/blocks.c nn_make_divisible)."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


class HardSigmoid(nn.Module):
    """relu6(x + 3) / 6, GhostNet's squeeze-excitation gate (src/ops/hard_sigmoid.c)."""

    def forward(self, x):
        return nn.functional.relu6(x + 3.0) / 6.0


class GhostModule(nn.Module):
    """Han et al.'s Ghost module, ratio 2 (src/nn/ghost.c): a primary conv to m = ceil(out/2) channels, a
    cheap 3×3 depthwise conv of those to m more, each with BN (and ReLU if relu), concatenated and cut to
    out channels. Names as timm's."""

    def __init__(self, in_c, out_c, k=1, stride=1, relu=True):
        super().__init__()
        self.out_c = out_c
        m = math.ceil(out_c / 2)
        self.primary_conv = nn.Sequential(nn.Conv2d(in_c, m, k, stride, k // 2, bias=False), nn.BatchNorm2d(m),
                                          nn.ReLU() if relu else nn.Identity())
        self.cheap_operation = nn.Sequential(nn.Conv2d(m, m, 3, 1, 1, groups=m, bias=False), nn.BatchNorm2d(m),
                                             nn.ReLU() if relu else nn.Identity())

    def forward(self, x):
        x1 = self.primary_conv(x)
        return torch.cat([x1, self.cheap_operation(x1)], 1)[:, :self.out_c]


class GhostSE(nn.Module):
    """timm's SqueezeExcite as GhostNet configures it: reduce to make_divisible(c·ratio, 4), ReLU, expand,
    hard sigmoid gate."""

    def __init__(self, c, ratio):
        super().__init__()
        r = make_divisible(c * ratio, 4)
        self.conv_reduce = nn.Conv2d(c, r, 1, bias=True)
        self.act1 = nn.ReLU()
        self.conv_expand = nn.Conv2d(r, c, 1, bias=True)
        self.gate = HardSigmoid()

    def forward(self, x):
        return x * self.gate(self.conv_expand(self.act1(self.conv_reduce(x.mean((2, 3), keepdim=True)))))


class GhostBottleneck(nn.Module):
    """timm's GhostBottleneck: ghost1, [depthwise conv_dw/bn_dw at stride 2], [SE], ghost2, plus the input or a
    depthwise + pointwise conv-BN shortcut."""

    def __init__(self, in_c, mid_c, out_c, k, stride, se_ratio):
        super().__init__()
        self.ghost1 = GhostModule(in_c, mid_c, relu=True)
        self.conv_dw = self.bn_dw = None
        if stride > 1:
            self.conv_dw = nn.Conv2d(mid_c, mid_c, k, stride, (k - 1) // 2, groups=mid_c, bias=False)
            self.bn_dw = nn.BatchNorm2d(mid_c)
        self.se = GhostSE(mid_c, se_ratio) if se_ratio > 0 else None
        self.ghost2 = GhostModule(mid_c, out_c, relu=False)
        self.shortcut = nn.Sequential()
        if in_c != out_c or stride != 1:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_c, in_c, k, stride, (k - 1) // 2, groups=in_c, bias=False), nn.BatchNorm2d(in_c),
                nn.Conv2d(in_c, out_c, 1, bias=False), nn.BatchNorm2d(out_c))

    def forward(self, x):
        y = self.ghost1(x)
        if self.conv_dw is not None:
            y = self.bn_dw(self.conv_dw(y))
        if self.se is not None:
            y = self.se(y)
        return self.ghost2(y) + self.shortcut(x)


class ConvBnAct(nn.Module):
    """timm's ConvBnAct: 1×1 conv, BN (bn1), ReLU."""

    def __init__(self, in_c, out_c):
        super().__init__()
        self.conv = nn.Conv2d(in_c, out_c, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_c)
        self.act1 = nn.ReLU()

    def forward(self, x):
        return self.act1(self.bn1(self.conv(x)))


class GhostNet(nn.Module):
    """GhostNet 1.0× as timm's ghostnet_100 (src/models/ghostnet.c), PyTorch's default initialization (timm
    has none of its own); the stem has stride 1 for small images, as in cnn.c."""

    # k, expansion, out, SE ratio, stride; one list per stage (blocks.<stage>.<block>)
    CFGS = [[[3, 16, 16, 0, 1]], [[3, 48, 24, 0, 2]], [[3, 72, 24, 0, 1]], [[5, 72, 40, 0.25, 2]],
            [[5, 120, 40, 0.25, 1]], [[3, 240, 80, 0, 2]],
            [[3, 200, 80, 0, 1], [3, 184, 80, 0, 1], [3, 184, 80, 0, 1], [3, 480, 112, 0.25, 1],
             [3, 672, 112, 0.25, 1]],
            [[5, 672, 160, 0.25, 2]],
            [[5, 960, 160, 0, 1], [5, 960, 160, 0.25, 1], [5, 960, 160, 0, 1], [5, 960, 160, 0.25, 1]]]

    def __init__(self, in_c=3, h=224, w=224, classes=1000, dropout=0.2):
        super().__init__()
        self.conv_stem = nn.Conv2d(in_c, 16, 3, 1 if small_input(h, w) else 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.act1 = nn.ReLU()
        stages, c = [], 16
        for cfg in self.CFGS:
            blocks = []
            for k, mid, out, se, s in cfg:
                blocks.append(GhostBottleneck(c, make_divisible(mid, 4), make_divisible(out, 4), k, s, se))
                c = make_divisible(out, 4)
            stages.append(nn.Sequential(*blocks))
        stages.append(nn.Sequential(ConvBnAct(c, 960)))
        self.blocks = nn.Sequential(*stages)
        self.conv_head = nn.Conv2d(960, 1280, 1, bias=True)
        self.act2 = nn.ReLU()
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(1280, classes)

    def forward(self, x):
        x = self.blocks(self.act1(self.bn1(self.conv_stem(x))))
        x = self.act2(self.conv_head(x.mean((2, 3), keepdim=True)))
        return self.classifier(self.dropout(torch.flatten(x, 1)))


class GhostBasicBlock(nn.Module):
    """He et al.'s basic block with Ghost modules for its 3×3 convs (src/nn/ghost.c nn_ghost_basic_block): ghost1
    (3×3 primary conv at stride, ReLU), ghost2 (linear), [drop path], plus the input or the downsample.0/1
    projection, ReLU."""

    def __init__(self, in_c, out_c, stride, drop=0.0):
        super().__init__()
        self.ghost1 = GhostModule(in_c, out_c, 3, stride, relu=True)
        self.ghost2 = GhostModule(out_c, out_c, 3, 1, relu=False)
        self.relu = nn.ReLU()
        self.downsample = None
        if stride != 1 or in_c != out_c:
            self.downsample = nn.Sequential(nn.Conv2d(in_c, out_c, 1, stride, 0, bias=False), nn.BatchNorm2d(out_c))
        residual_tail(self, out_c, 0, drop)

    def forward(self, x):
        y = apply_tail(self, self.ghost2(self.ghost1(x)))
        return self.relu(y + (self.downsample(x) if self.downsample is not None else x))


DEFAULT_STOCHASTIC_DEPTH = {"efficientnet_b0": 0.2}  # cnn.c's model defaults (src/models/*.c); 0 elsewhere


class ConvLSTMCell(nn.Module):
    """ConvLSTM (src/nn/convrnn.h): gates from one convolution over concat(x, h_prev), rows f, i, o, g;
    c = σ(f)·c_prev + σ(i)·tanh(g), h = σ(o)·tanh(c). A None state is zero, computed as written (full
    convolution over zeros): the reference for cnn.c's first step, which skips what is zero."""

    def __init__(self, in_c, hidden, k=3):
        super().__init__()
        self.in_c, self.hidden = in_c, hidden
        self.conv = nn.Conv2d(in_c + hidden, 4 * hidden, k, padding=k // 2)

    def forward(self, x, state=None):
        h, c = state if state is not None else (zero_state(x, self.hidden),) * 2
        check_state("ConvLSTM", x, h, self.in_c, self.hidden)
        f, i, o, g = torch.split(self.conv(torch.cat([x, h], 1)), self.hidden, 1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, (h, c)


class ConvGRUCell(nn.Module):
    """ConvGRU (Ballas et al. 2016; src/nn/convrnn.h): [r; z] = σ(conv_gates([x, h_prev])),
    n = tanh(conv_cand([x, r·h_prev])), h = (1 − z)·h_prev + z·n. A None state is zero."""

    def __init__(self, in_c, hidden, k=3):
        super().__init__()
        self.in_c, self.hidden = in_c, hidden
        self.conv_gates = nn.Conv2d(in_c + hidden, 2 * hidden, k, padding=k // 2)
        self.conv_cand = nn.Conv2d(in_c + hidden, hidden, k, padding=k // 2)

    def forward(self, x, state=None):
        h = state if state is not None else zero_state(x, self.hidden)
        check_state("ConvGRU", x, h, self.in_c, self.hidden)
        r, z = torch.split(torch.sigmoid(self.conv_gates(torch.cat([x, h], 1))), self.hidden, 1)
        n = torch.tanh(self.conv_cand(torch.cat([x, r * h], 1)))
        h = (1 - z) * h + z * n
        return h, h


def zero_state(x, hidden):
    return x.new_zeros(x.shape[0], hidden, x.shape[2], x.shape[3])


def check_state(cell, x, h, in_c, hidden):
    """The seed's "gestion des erreurs": an input that does not fit the cell or its state is an error."""
    if x.shape[1] != in_c or h.shape[1] != hidden or x.shape[2:] != h.shape[2:]:
        raise ValueError(f"{cell}: input {'x'.join(map(str, x.shape[1:]))} does not match the hidden state "
                         f"{'x'.join(map(str, h.shape[1:]))} (cell {in_c} -> {hidden} channels)")


def make_cell(regulator, width):
    return {"convlstm": ConvLSTMCell, "convgru": ConvGRUCell}[regulator](width, width)


class RegNetBlock(nn.Module):
    """RegNet block (src/nn/regnet_block.c): conv1 3×3 (stride) + bn1 + ReLU → the stage's cell reads it →
    concat(features, h) → conv_fuse 1×1 + bn_fuse + ReLU → conv2 3×3 + bn2 → + shortcut → ReLU. Without a
    regulator: BasicBlock, names and all."""

    def __init__(self, in_c, out_c, stride, regulated):
        super().__init__()
        self.conv1 = nn.Conv2d(in_c, out_c, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_c)
        self.relu = nn.ReLU()
        if regulated:
            self.conv_fuse = nn.Conv2d(2 * out_c, out_c, 1, bias=False)
            self.bn_fuse = nn.BatchNorm2d(out_c)
        self.conv2 = nn.Conv2d(out_c, out_c, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_c)
        self.downsample = shortcut(in_c, out_c, stride)

    def forward(self, x, rnn=None, state=None):
        y = self.relu(self.bn1(self.conv1(x)))
        if rnn is not None:
            h, state = rnn(y, state)
            y = self.relu(self.bn_fuse(self.conv_fuse(torch.cat([y, h], 1))))
        y = self.bn2(self.conv2(y)) + (self.downsample(x) if self.downsample is not None else x)
        return self.relu(y), state


class RegNetBottleneck(nn.Module):
    """Bottleneck RegNet block: conv1 1×1 + bn1 + ReLU → conv2 3×3 (stride) + bn2 + ReLU → the cell reads
    these → concat → conv_fuse 1×1 + bn_fuse + ReLU → conv3 1×1 to 4·width + bn3 → + shortcut → ReLU.
    Without a regulator: torchvision's Bottleneck."""

    def __init__(self, in_c, width, stride, regulated):
        super().__init__()
        self.conv1 = nn.Conv2d(in_c, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        if regulated:
            self.conv_fuse = nn.Conv2d(2 * width, width, 1, bias=False)
            self.bn_fuse = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, 4 * width, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(4 * width)
        self.relu = nn.ReLU()
        self.downsample = shortcut(in_c, 4 * width, stride)

    def forward(self, x, rnn=None, state=None):
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        if rnn is not None:
            h, state = rnn(y, state)
            y = self.relu(self.bn_fuse(self.conv_fuse(torch.cat([y, h], 1))))
        y = self.bn3(self.conv3(y)) + (self.downsample(x) if self.downsample is not None else x)
        return self.relu(y), state


def shortcut(in_c, out_c, stride):
    if stride == 1 and in_c == out_c:
        return None
    return nn.Sequential(nn.Conv2d(in_c, out_c, 1, stride, 0, bias=False), nn.BatchNorm2d(out_c))


class RegStage(nn.Module):
    """A stage: blocks "0", "1", ... and, when regulated, the cell "rnn" they share; its state starts
    at zero and passes from block to block."""

    def __init__(self, blocks, rnn=None):
        super().__init__()
        for i, b in enumerate(blocks):
            self.add_module(str(i), b)
        self.n = len(blocks)
        self.rnn = rnn

    def forward(self, x):
        state = None
        for i in range(self.n):
            x, state = getattr(self, str(i))(x, self.rnn, state)
        return x


class RegNet(nn.Module):
    """RegNet of Xu et al. 2021 (src/models/regnet.c; not RegNetX/Y). CIFAR layout (depth 20/32/56/110):
    conv1/bn1 3×3 to 16, layer1..3 of (depth-2)/6 blocks at 16/32/64. ImageNet layout (18/34/50): conv1 7×7/2
    + max pool 3×3/2 (3×3/1 and no pool for inputs under 64 pixels a side), layer1..4 at 64..512, basic
    blocks or (50) bottlenecks. Then global average pooling and fc. regulated: stage numbers with a cell."""

    CIFAR = {20: 3, 32: 5, 56: 9, 110: 18}
    IMAGENET = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3)}

    def __init__(self, depth, in_c=3, h=32, w=32, classes=10, regulator="convlstm", regulated=(1, 2, 3, 4)):
        super().__init__()
        cifar = depth in self.CIFAR
        counts = (self.CIFAR[depth],) * 3 if cifar else self.IMAGENET[depth]
        small = cifar or small_input(h, w)
        width0 = 16 if cifar else 64
        self.conv1 = nn.Conv2d(in_c, width0, 3 if small else 7, 1 if small else 2, 1 if small else 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width0)
        self.relu = nn.ReLU()
        self.maxpool = nn.Identity() if small else nn.MaxPool2d(3, 2, 1)
        c, cells = width0, []
        for s, n in enumerate(counts):
            width = width0 << s
            reg = regulator != "none" and s + 1 in regulated
            blocks = []
            for b in range(n):
                stride = 2 if s > 0 and b == 0 else 1
                if depth == 50:
                    blocks.append(RegNetBottleneck(c, width, stride, reg))
                    c = 4 * width
                else:
                    blocks.append(RegNetBlock(c, width, stride, reg))
                    c = width
            cell = make_cell(regulator, width) if reg else None
            cells += [cell] if cell else []
            setattr(self, f"layer{s + 1}", RegStage(blocks, cell))
        self.stages = len(counts)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c, classes)
        torchvision_init(self)
        for cell in cells:  # PyTorch's default Conv2d initialization, as cnn.c's cells
            for m in cell.modules():
                if isinstance(m, nn.Conv2d):
                    m.reset_parameters()

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for s in range(self.stages):
            x = getattr(self, f"layer{s + 1}")(x)
        return self.fc(torch.flatten(self.avgpool(x), 1))


def build(name, in_c, h, w, classes, bn=False, dropout=0.0, stochastic_depth=None, dropout_aux=None,
          regulator="convlstm", regulated_stages=None):
    """The PyTorch twin of cnn.c's model `name` for inputs in_c×h×w. bn applies to convnet only; dropout
    to convnet (a layer only when > 0), plain/residual, VGG, googlenet, efficientnet_b0 and ghostnet (always
    layers, as in cnn.c); stochastic_depth to the residual families and efficientnet_b0 (None: cnn.c's default
    for the model); dropout_aux to googlenet's auxiliary heads (None: 0.7, torchvision's); regulator
    (convlstm|convgru|none) and regulated_stages (stage numbers, default all) to the regnets."""
    if stochastic_depth is None:
        stochastic_depth = DEFAULT_STOCHASTIC_DEPTH.get(name, 0.0)
    if name == "efficientnet_b0":
        return efficientnet_b0(in_c, h, w, classes, dropout, stochastic_depth)
    if name == "convnet":
        return ConvNet(in_c, h, w, classes, bn=bn, dropout=dropout)
    for prefix, residual in (("plain", False), ("residual", True)):
        if name.startswith(prefix) and name[len(prefix):].isdigit() and int(name[len(prefix):]) in PlainResidualNet.TABLE1:
            return PlainResidualNet(int(name[len(prefix):]), residual, in_c, classes, dropout, stochastic_depth)
    cifar = {f"resnet{d}": (d, "basic") for d in (20, 32, 44, 56, 110)}
    cifar.update({f"se_resnet{d}": (d, "se") for d in (20, 56)})
    cifar.update({f"preact_resnet{d}": (d, "preact") for d in (20, 56, 110)})
    cifar["highway20"] = (20, "highway")
    cifar["ghost_resnet56"] = (56, "ghost")  # Ghost-ResNet-56 (the GhostNet paper's section 4.1)
    if name in cifar:
        return ResNetCifar(cifar[name][0], in_c, classes, cifar[name][1], stochastic_depth)
    if name == "preact_resnet18":
        return PreActResNet18(in_c, h, w, classes, stochastic_depth)
    if name.startswith("regnet") and name[6:].isdigit() and int(name[6:]) in {**RegNet.CIFAR, **RegNet.IMAGENET}:
        if stochastic_depth:
            raise ValueError(f"{name}: no stochastic depth (cnn.c's regnets have none)")
        return RegNet(int(name[6:]), in_c, h, w, classes, regulator, tuple(regulated_stages or (1, 2, 3, 4)))
    if stochastic_depth:
        raise ValueError(f"{name}: stochastic depth is defined here for the CIFAR layouts, preact_resnet18 and "
                         "efficientnet_b0 only")
    if name == "googlenet":
        return googlenet(in_c, h, w, classes, dropout, 0.7 if dropout_aux is None else dropout_aux)
    if name == "ghostnet":
        return GhostNet(in_c, h, w, classes, dropout)
    if name in TORCHVISION or name == "se_resnet50":
        return torchvision_model(name, in_c, h, w, classes, dropout=dropout)
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
