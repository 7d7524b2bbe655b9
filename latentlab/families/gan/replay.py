"""Experience replay for the discriminator: CycleGAN's image pool, on the host in numpy."""

from __future__ import annotations

import numpy as np


class ImagePool:
    """A pool of up to ``size`` past fakes (with their labels).

    ``query(fakes)``: while the pool fills, each fake is stored and returned as is; once full,
    each fake is, with probability ½, swapped for a random stored one (which is returned in its
    place), else returned as is. The discriminator thus also sees what the generator used to make.
    """

    def __init__(self, size: int, images: np.ndarray | None = None, labels: np.ndarray | None = None):
        self.size = size
        self.images = images if images is not None else None
        self.labels = labels if labels is not None else np.zeros(0, dtype=np.int64)

    def __len__(self) -> int:
        return 0 if self.images is None else len(self.images)

    def query(self, fakes: np.ndarray, labels: np.ndarray, rng: np.random.Generator):
        fakes, labels = np.array(fakes), np.array(labels)
        out, out_labels = fakes.copy(), labels.copy()
        for i in range(len(fakes)):
            if len(self) < self.size:
                self.images = fakes[i:i + 1].copy() if self.images is None else np.concatenate(
                    [self.images, fakes[i:i + 1]])
                self.labels = np.concatenate([self.labels, labels[i:i + 1]])
            elif rng.random() < 0.5:
                j = int(rng.integers(self.size))
                out[i], out_labels[i] = self.images[j], self.labels[j]
                self.images[j], self.labels[j] = fakes[i], labels[i]
        return out, out_labels

    def state(self) -> dict[str, np.ndarray]:
        if self.images is None:
            return {}
        return {"pool_images": self.images, "pool_labels": self.labels}

    @classmethod
    def restore(cls, size: int, extra: dict[str, np.ndarray]) -> ImagePool:
        return cls(size, extra.get("pool_images"), extra.get("pool_labels"))
