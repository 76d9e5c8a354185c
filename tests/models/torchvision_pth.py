"""A randomized torchvision googlenet saved as a `.pth` state dict, with its eval-mode logits.

Run as a subprocess (torchvision crashes when imported after TensorFlow in one process):

    python torchvision_pth.py OUT.pth OUT.npz

OUT.pth: `torch.save(net.state_dict())` of `torchvision_reference.randomized_googlenet(1000)`
(aux heads included, random BatchNorm statistics); OUT.npz: `images` (2 × 224 × 224 × 3, NHWC)
and their eval-mode `logits`.
"""

import sys

import numpy as np
import torch

from torchvision_reference import randomized_googlenet


def main(pth, out):
    net = randomized_googlenet(1000).eval()
    torch.save(net.state_dict(), pth)
    images = np.random.default_rng(0).uniform(-1, 1, (2, 224, 224, 3)).astype("float32")
    with torch.no_grad():
        logits = net(torch.from_numpy(images.transpose(0, 3, 1, 2).copy())).numpy()
    np.savez(out, images=images, logits=logits)


if __name__ == "__main__":
    main(*sys.argv[1:])
