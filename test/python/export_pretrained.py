"""Exports seeded random-weight CNNs to ONNX and writes PyTorch's and onnxruntime's outputs for a given input.

Used by test/model-import.test.ts to prove that our ONNX import computes what PyTorch and onnxruntime compute.
The architectures are torchvision's AlexNet, ResNet-18 and MobileNetV2, written here in plain torch with torchvision's
layer names (torchvision's compiled ops do not load against every torch build: "operator torchvision::nms does not
exist"), each with a width multiplier so tests can use small copies, plus a CaffeNet-shaped network with grouped
convolutions, LRN and Caffe's ceil-mode pooling.

    python3 export_pretrained.py --arch resnet18 --bn kept --width 0.25 --size 64 \
        --out model.onnx --input x.bin --batch 3 --ref-dir refs/

(or --specs FILE, a JSON list of such runs, in one process) writes model.onnx and, for the float32 NCHW input x.bin ([batch, 3, size, size], little-endian), refs/meta.json
(the ONNX names of the feature tensor and the logits), refs/{torch,ort}_{features,logits}.bin (float32).
`--bn folded` exports in eval mode (the exporter folds batch norm into the convolutions); `--bn kept` exports with
training=PRESERVE and do_constant_folding=False so BatchNormalization nodes stay, as in model-zoo files.
"""
import argparse
import json
import math
import os
import tempfile

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def scaled(c, width, divisor=1):
    return max(divisor, int(round(c * width / divisor)) * divisor)


class AlexNet(nn.Module):
    """torchvision.models.AlexNet (layer names as torchvision's), channels and hidden units times `width`."""

    def __init__(self, width=1.0, num_classes=1000):
        super().__init__()
        c = [scaled(n, width) for n in (64, 192, 384, 256, 256)]
        hidden = scaled(4096, width)
        self.features = nn.Sequential(
            nn.Conv2d(3, c[0], 11, 4, 2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(c[0], c[1], 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(c[1], c[2], 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(c[2], c[3], 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(c[3], c[4], 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(0.5), nn.Linear(c[4] * 36, hidden), nn.ReLU(inplace=True),
            nn.Dropout(0.5), nn.Linear(hidden, hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


class BasicBlock(nn.Module):
    def __init__(self, inp, out, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(inp, out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out, out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out)
        self.downsample = None
        if stride != 1 or inp != out:
            self.downsample = nn.Sequential(nn.Conv2d(inp, out, 1, stride, bias=False), nn.BatchNorm2d(out))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(y)) + identity)


class ResNet18(nn.Module):
    """torchvision.models.resnet18 (layer names as torchvision's), channels times `width`."""

    def __init__(self, width=1.0, num_classes=1000):
        super().__init__()
        c = [scaled(n, width) for n in (64, 128, 256, 512)]
        self.conv1 = nn.Conv2d(3, c[0], 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(c[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = nn.Sequential(BasicBlock(c[0], c[0], 1), BasicBlock(c[0], c[0], 1))
        self.layer2 = nn.Sequential(BasicBlock(c[0], c[1], 2), BasicBlock(c[1], c[1], 1))
        self.layer3 = nn.Sequential(BasicBlock(c[1], c[2], 2), BasicBlock(c[2], c[2], 1))
        self.layer4 = nn.Sequential(BasicBlock(c[2], c[3], 2), BasicBlock(c[3], c[3], 1))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(c[3], num_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def conv_bn_relu6(inp, out, stride=1, groups=1, kernel=3):
    return nn.Sequential(nn.Conv2d(inp, out, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False), nn.BatchNorm2d(out), nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    def __init__(self, inp, out, stride, expand):
        super().__init__()
        hidden = int(round(inp * expand))
        self.use_res_connect = stride == 1 and inp == out
        layers = [conv_bn_relu6(inp, hidden, kernel=1)] if expand != 1 else []
        layers += [conv_bn_relu6(hidden, hidden, stride, groups=hidden), nn.Conv2d(hidden, out, 1, bias=False), nn.BatchNorm2d(out)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(nn.Module):
    """torchvision.models.mobilenet_v2 (layer names as torchvision's), width multiplier as torchvision's."""

    def __init__(self, width=1.0, num_classes=1000):
        super().__init__()
        def div(v):  # torchvision's _make_divisible(v, 8)
            n = max(8, int(v + 4) // 8 * 8)
            return n + 8 if n < 0.9 * v else n
        inp = div(32 * width)
        last = div(1280 * max(1.0, width))
        features = [conv_bn_relu6(3, inp, stride=2)]
        for t, c, n, s in [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1]]:
            out = div(c * width)
            for i in range(n):
                features.append(InvertedResidual(inp, out, s if i == 0 else 1, t))
                inp = out
        features.append(conv_bn_relu6(inp, last, kernel=1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(last, num_classes))

    def forward(self, x):
        x = F.adaptive_avg_pool2d(self.features(x), (1, 1))
        return self.classifier(torch.flatten(x, 1))


class LRNFunction(torch.autograd.Function):
    """Across-channel LRN that exports as one ONNX LRN node (torch exports LocalResponseNorm as a chain of ops)."""

    @staticmethod
    def forward(ctx, x, size, alpha, beta, k):
        return F.local_response_norm(x, size, alpha, beta, k)

    @staticmethod
    def symbolic(g, x, size, alpha, beta, k):
        return g.op("LRN", x, size_i=size, alpha_f=alpha, beta_f=beta, bias_f=k)


class LRN(nn.Module):
    def __init__(self, size=5, alpha=1e-4, beta=0.75, k=1.0):
        super().__init__()
        self.args = (size, alpha, beta, k)

    def forward(self, x):
        return LRNFunction.apply(x, *self.args)


class CaffeNet(nn.Module):
    """BVLC CaffeNet's shape: conv → ReLU → max pool (ceil mode, as Caffe) → LRN, groups of 2 in conv2/4/5, fc6-8."""

    def __init__(self, width=1.0, num_classes=1000):
        super().__init__()
        c = [scaled(n, width, 2) for n in (96, 256, 384, 384, 256)]
        hidden = scaled(4096, width)
        self.features = nn.Sequential(
            nn.Conv2d(3, c[0], 11, 4), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, ceil_mode=True), LRN(),
            nn.Conv2d(c[0], c[1], 5, padding=2, groups=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, ceil_mode=True), LRN(),
            nn.Conv2d(c[1], c[2], 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(c[2], c[3], 3, padding=1, groups=2), nn.ReLU(inplace=True),
            nn.Conv2d(c[3], c[4], 3, padding=1, groups=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, ceil_mode=True),
        )
        self.classifier = nn.Sequential(
            nn.Linear(c[4] * 36, hidden), nn.ReLU(inplace=True), nn.Dropout(0.5),
            nn.Linear(hidden, hidden), nn.ReLU(inplace=True), nn.Dropout(0.5),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


ARCHS = {"alexnet": AlexNet, "resnet18": ResNet18, "mobilenet_v2": MobileNetV2, "caffenet": CaffeNet}


def randomize_batch_norm(model, gen):
    """Non-trivial batch-norm parameters and statistics, so the import of each is tested."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            with torch.no_grad():
                m.weight.copy_(torch.rand(n, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(n, generator=gen) * 0.1)
                m.running_mean.copy_(torch.randn(n, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(n, generator=gen) + 0.5)


def build(arch, width, seed, classes):
    torch.manual_seed(seed)
    model = ARCHS[arch](width=width, num_classes=classes)
    randomize_batch_norm(model, torch.Generator().manual_seed(seed + 1))
    return model.eval()


def export(model, size, path, bn):
    dummy = torch.zeros(1, 3, size, size)
    kwargs = dict(input_names=["input"], output_names=["output"], opset_version=17, dynamo=False,
                  dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
    if bn == "kept":
        kwargs.update(training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False)
    torch.onnx.export(model, dummy, path, **kwargs)


def feature_tensor_name(onnx_path):
    """The ONNX name of the input of the last Gemm/MatMul node (our default feature layer)."""
    import onnx
    graph = onnx.load(onnx_path).graph
    last = [n for n in graph.node if n.op_type in ("Gemm", "MatMul")][-1]
    return last.input[0], last.output[0]


def ort_outputs(onnx_path, names, x):
    import onnx
    import onnxruntime as ort
    m = onnx.load(onnx_path)
    present = {o.name for o in m.graph.output}
    for name in names:
        if name not in present:
            m.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "with-outputs.onnx")
        onnx.save(m, path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        sess = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        return sess.run(names, {"input": x})


def run(arch, bn, width, size, classes, seed, out, input_path=None, batch=1, ref_dir=None):
    """Exports one network to `out` and, given an input file, writes its references to `ref_dir`."""
    model = build(arch, width, seed, classes)
    export(model, size, out, bn)
    if not input_path:
        return
    x = np.fromfile(input_path, dtype="<f4").reshape(batch, 3, size, size)
    last_linear = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    captured = {}
    hook = last_linear.register_forward_hook(lambda m, inp, out: captured.update(features=inp[0].detach()))
    with torch.no_grad():
        logits = model(torch.from_numpy(x))
    hook.remove()
    feature_name, logits_name = feature_tensor_name(out)
    ort_features, ort_logits = ort_outputs(out, [feature_name, logits_name], x)
    os.makedirs(ref_dir, exist_ok=True)
    for name, arr in [("torch_features", captured["features"].numpy()), ("torch_logits", logits.numpy()),
                      ("ort_features", ort_features), ("ort_logits", ort_logits)]:
        np.ascontiguousarray(arr, dtype="<f4").reshape(batch, -1).tofile(os.path.join(ref_dir, name + ".bin"))
    with open(os.path.join(ref_dir, "meta.json"), "w") as f:
        json.dump({"feature": feature_name, "logits": logits_name, "featureSize": int(np.prod(ort_features.shape[1:])),
                   "classes": classes}, f)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", choices=sorted(ARCHS))
    p.add_argument("--bn", choices=["folded", "kept"], default="folded")
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--classes", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out")
    p.add_argument("--input", help="float32 NCHW input file")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--ref-dir")
    p.add_argument("--specs", help="JSON file: a list of {arch, bn, width, size, classes, seed, out, input, batch, refDir} (one process for several)")
    a = p.parse_args()
    torch.set_num_threads(1)
    if a.specs:
        with open(a.specs) as f:
            for s in json.load(f):
                run(s["arch"], s.get("bn", "folded"), s.get("width", 1.0), s["size"], s.get("classes", 1000), s.get("seed", 0),
                    s["out"], s.get("input"), s.get("batch", 1), s.get("refDir"))
        return
    if not a.arch or not a.out:
        p.error("--arch and --out are required without --specs")
    run(a.arch, a.bn, a.width, a.size, a.classes, a.seed, a.out, a.input, a.batch, a.ref_dir)


if __name__ == "__main__":
    main()
