"""Fashion-MNIST from Debian's IDX files or a download, checksums verified either way."""

from __future__ import annotations

import gzip
import shutil

import numpy as np
import pytest

from latentlab.data import fashion_mnist
from latentlab.data.fashion_mnist import DEBIAN_DIR, FILES
from latentlab.errors import UserError
from tests.support.data import needs_debian_fashion_mnist

pytestmark = needs_debian_fashion_mnist

NAMES = [spec.name for spec in FILES.values()]


def originals() -> dict[str, bytes]:
    return {name: (DEBIAN_DIR / name).read_bytes() for name in NAMES}


def test_local_copy_is_verified_copied_and_read_back(tmp_path):
    out = tmp_path / "raw"
    out.mkdir()
    meta = fashion_mnist.fetch(out, [tmp_path / "absent", DEBIAN_DIR], retries=0, mirrors=[])
    assert meta["origin"] == str(DEBIAN_DIR)
    raw = fashion_mnist.open_raw(out, meta)
    assert {s: len(raw.splits[s]) for s in raw.splits} == {"train": 60000, "test": 10000}
    assert np.bincount(raw.splits["train"].labels).tolist() == [6000] * 10
    name, first = next(raw.splits["test"].stream())
    assert name == "test[0]" and first.shape == (28, 28) and first.dtype == np.uint8
    assert first.max() > 0


@pytest.mark.parametrize("damage", ["truncated", "other_data"])
def test_a_damaged_local_file_is_an_error_naming_it(tmp_path, damage):
    local = tmp_path / "local"
    shutil.copytree(DEBIAN_DIR, local)
    victim = local / "t10k-labels-idx1-ubyte.gz"
    if damage == "truncated":
        victim.write_bytes(victim.read_bytes()[: len(victim.read_bytes()) // 2])
        expected = "truncated or corrupt"
    else:
        payload = bytearray(gzip.decompress(victim.read_bytes()))
        payload[-1] ^= 1  # one flipped label: valid gzip, wrong data
        victim.write_bytes(gzip.compress(bytes(payload)))
        expected = "checksum mismatch"
    out = tmp_path / "raw"
    out.mkdir()
    with pytest.raises(UserError, match=expected) as caught:
        fashion_mnist.fetch(out, [local], retries=0, mirrors=[])
    assert "t10k-labels-idx1-ubyte.gz" in str(caught.value)


def test_download_retries_transient_failures_then_verifies(tmp_path, file_server):
    server = file_server(originals())
    server.fail_next = 2  # the first two requests get 503
    out = tmp_path / "raw"
    out.mkdir()
    meta = fashion_mnist.fetch(out, [tmp_path / "empty"], retries=3, mirrors=[server.url])
    assert meta["origin"] == "download"
    assert len(server.requests) == len(NAMES) + 2
    assert sorted(p.name for p in out.iterdir()) == sorted(NAMES)
    for name in NAMES:
        assert (out / name).read_bytes() == (DEBIAN_DIR / name).read_bytes()


def test_download_falls_back_to_the_next_mirror(tmp_path, file_server):
    empty = file_server({})
    good = file_server(originals())
    out = tmp_path / "raw"
    out.mkdir()
    fashion_mnist.fetch(out, [], retries=0, mirrors=[empty.url, good.url])
    assert sorted(p.name for p in out.iterdir()) == sorted(NAMES)


def test_a_corrupt_download_is_retried_then_fails_leaving_nothing(tmp_path, file_server):
    files = originals()
    name = "train-labels-idx1-ubyte.gz"
    files[name] = files[name][:-100]  # cut short on the server
    server = file_server(files)
    out = tmp_path / "raw"
    out.mkdir()
    with pytest.raises(UserError, match=f"could not download {name}.*truncated or corrupt"):
        fashion_mnist.fetch(out, [], retries=1, mirrors=[server.url])
    assert server.requests.count(f"/{name}") == 2
    assert name not in [p.name for p in out.iterdir()]
    assert not [p for p in out.iterdir() if p.name.endswith(".part")]


def test_a_mirror_that_trickles_bytes_is_cut_off_at_the_deadline(tmp_path, file_server):
    slow = file_server(originals())
    slow.trickle = 0.05  # each file would take hours; every read still brings a byte in time
    good = file_server(originals())
    out = tmp_path / "raw"
    out.mkdir()
    meta = fashion_mnist.fetch(out, [], retries=0, mirrors=[slow.url, good.url], deadline=0.5)
    assert meta["origin"] == "download"  # from the second mirror, after the first timed out
    assert sorted(p.name for p in out.iterdir()) == sorted(NAMES)
    with pytest.raises(UserError, match=r"not finished after 0.5 s \(\d+ bytes so far\); the "
                                        r"server sends too slowly"):
        fashion_mnist.fetch(tmp_path / "raw", [], retries=0, mirrors=[slow.url], deadline=0.5)
