"""Reference outputs of a randomized torchvision googlenet, in a process without TensorFlow.

Importing torchvision after TensorFlow in one process crashes here (TF 2.21, torch 2.14), so
the parity test runs this script as a subprocess:

    python torchvision_reference.py OUT.npz NUM_CLASSES SIDE [SIDE ...]

It writes the state dict (`state/<key>`), and for each SIDE the input images
(`images/<side>`, NCHW), eval-mode logits (`eval/<side>`), every stage's eval-mode output
(`stage/<side>/<module>`), and at 224 px the train-mode outputs with BatchNorm in inference
mode and dropout off (`train/main`, `train/aux1`, `train/aux2`).
"""

import sys

import numpy as np
import torch
import torchvision

STAGES = ("conv1", "maxpool1", "conv2", "conv3", "maxpool2", "inception3a", "inception3b", "maxpool3",
          "inception4a", "inception4b", "inception4c", "inception4d", "inception4e", "maxpool4",
          "inception5a", "inception5b")


def randomized_googlenet(num_classes):
    torch.manual_seed(0)
    net = torchvision.models.googlenet(
        weights=None, aux_logits=True, init_weights=True, num_classes=num_classes, transform_input=False
    )
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):  # random statistics and affine
                n = module.num_features
                module.running_mean.copy_(torch.randn(n, generator=generator) * 0.5)
                module.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
                module.weight.copy_(torch.rand(n, generator=generator) + 0.5)
                module.bias.copy_(torch.randn(n, generator=generator) * 0.1)
    return net


def main(out, num_classes, *sides):
    net = randomized_googlenet(int(num_classes))
    arrays = {f"state/{k}": v.numpy() for k, v in net.state_dict().items()}
    captured = {}
    for name in STAGES:
        getattr(net, name).register_forward_hook(
            lambda m, i, o, name=name: captured.__setitem__(name, o.detach().numpy())
        )
    for side in map(int, sides):
        x = np.random.default_rng(side).normal(0, 1, (2, 3, side, side)).astype("float32")
        arrays[f"images/{side}"] = x
        net.eval()
        with torch.no_grad():
            arrays[f"eval/{side}"] = net(torch.from_numpy(x)).numpy()
        arrays.update({f"stage/{side}/{k}": v for k, v in captured.items()})
        if side == 224:
            net.train()
            for module in net.modules():  # BN in inference mode, dropout off
                if isinstance(module, (torch.nn.BatchNorm2d, torch.nn.Dropout)):
                    module.eval()
            with torch.no_grad():
                outputs = net(torch.from_numpy(x))
            arrays["train/main"] = outputs.logits.numpy()
            arrays["train/aux1"] = outputs.aux_logits1.numpy()
            arrays["train/aux2"] = outputs.aux_logits2.numpy()
    np.savez(out, **arrays)


if __name__ == "__main__":
    main(*sys.argv[1:])
