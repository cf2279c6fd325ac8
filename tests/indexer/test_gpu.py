"""indexer.gpu: where indices go. The decision logic is tested everywhere (FAISS's GPU count
faked where it matters); the tests marked `gpu` run on a real GPU with faiss-gpu
(`pytest -m gpu`) and skip without one."""

from __future__ import annotations

import faiss
import pytest
from indexer_fakes import reference_for, unit_queries

from indexer import open_index
from indexer.errors import DeviceError
from indexer.gpu import choose_placement, gpu_count, to_placement


@pytest.mark.parametrize(
    ("device", "gpus", "expected"),
    [
        ("auto", 0, "cpu"),
        ("auto", 2, "gpu"),
        ("cpu", 4, "cpu"),
        ("cuda", 1, "gpu"),
        ("cpu", 0, "cpu"),
    ],
)
def test_choice(device: str, gpus: int, expected: str) -> None:
    assert choose_placement(device, gpus) == expected


def test_cuda_without_gpu_and_unknown_devices_are_errors() -> None:
    with pytest.raises(DeviceError, match="faiss-gpu"):
        choose_placement("cuda", 0)
    with pytest.raises(DeviceError, match="unknown device"):
        choose_placement("tpu", 8)


def test_an_index_faiss_cannot_move_stays_on_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fallback: an index type FAISS cannot clone to the GPU keeps serving on the CPU."""
    index = faiss.IndexFlatIP(4)

    def refuse(i: faiss.Index) -> faiss.Index:
        raise RuntimeError("not supported on GPU")

    monkeypatch.setattr(faiss, "index_cpu_to_all_gpus", refuse, raising=False)
    assert to_placement(index, "gpu") == (index, "cpu")
    assert to_placement(index, "cpu") == (index, "cpu")


@pytest.mark.skipif(gpu_count() > 0, reason="FAISS sees a GPU here: the CPU-only path is moot")
def test_without_a_gpu_auto_searches_on_the_cpu_and_cuda_is_an_error(built_index) -> None:
    with open_index(built_index, device="auto") as index:
        assert index.placement == "cpu"
    with pytest.raises(DeviceError, match="faiss-gpu"):
        open_index(built_index, device="cuda")


def test_reader_takes_the_gpu_path_when_faiss_reports_gpus(
    monkeypatch: pytest.MonkeyPatch, built_index, small_catalog, fake_encoder
) -> None:
    """With FAISS pretending to have 2 GPUs (the 'GPU index' is the CPU one), open_index
    places the index on the GPU and searches without selectors, still exactly."""
    moved = []
    monkeypatch.setattr(faiss, "get_num_gpus", lambda: 2, raising=False)
    monkeypatch.setattr(
        faiss, "index_cpu_to_all_gpus", lambda i: moved.append(i) or i, raising=False
    )
    reference = reference_for(small_catalog, fake_encoder)
    queries = unit_queries(4)
    with open_index(built_index, device="auto") as index:
        assert index.placement == "gpu" and len(moved) == 3  # image, text, product
        filters = {"gender": "Women"}
        hits = index.search_texts(queries, 5, filters=filters)
        assert [[h.id for h in row] for row in hits] == [
            [i for i, _ in row] for row in reference.search("texts", queries, 5, filters)
        ]
    with open_index(built_index, device="cpu") as index:
        assert index.placement == "cpu"


class _GpuLikeIndex:
    """Stands in for a GPU index: searches without selectors, cannot reconstruct."""

    def __init__(self, cpu: faiss.Index) -> None:
        self.cpu, self.ntotal, self.d = cpu, cpu.ntotal, cpu.d

    def search(self, queries, k, params=None):
        assert params is None, "GPU indices take no SearchParameters"
        assert k <= 8, "deeper than the (patched) GPU limit"
        return self.cpu.search(queries, k)

    def reconstruct_batch(self, ids):
        raise RuntimeError("reconstruct not implemented on this GPU index")


def test_gpu_search_past_its_k_limit_falls_back_to_exact_on_a_cpu_copy(
    monkeypatch: pytest.MonkeyPatch, built_index, small_catalog, fake_encoder
) -> None:
    monkeypatch.setattr(faiss, "get_num_gpus", lambda: 1, raising=False)
    monkeypatch.setattr(faiss, "index_cpu_to_all_gpus", _GpuLikeIndex, raising=False)
    monkeypatch.setattr("indexer.knn.GPU_MAX_K", 8)
    reference = reference_for(small_catalog, fake_encoder)
    queries = unit_queries(3)
    filters = {"gender": "Men"}
    expected = reference.search("images", queries, 12, filters)
    assert len(expected[0]) == 12  # enough matches that 8 deep cannot be enough
    with open_index(built_index) as index:
        assert index.placement == "gpu"
        hits = index.search_images(queries, 12, filters=filters)
        assert [[h.id for h in row] for row in hits] == [[i for i, _ in r] for r in expected]
        assert [len(row) for row in index.search_texts(queries, 8)] == [8, 8, 8]


def test_similar_on_a_gpu_like_index_matches_the_cpu(
    monkeypatch: pytest.MonkeyPatch, built_index, small_catalog, fake_encoder
) -> None:
    """A GPU index cannot reconstruct the product's own vector nor take the exclusions
    as a selector: the CPU copy gives the vector, the deep search filters."""
    product_id = reference_for(small_catalog, fake_encoder).ids[3]
    with open_index(built_index, device="cpu") as index:
        expected = {
            target: index.similar(product_id, 12, {"gender": "Men"}, target=target)
            for target in ("image", "product")
        }
    monkeypatch.setattr(faiss, "get_num_gpus", lambda: 1, raising=False)
    monkeypatch.setattr(faiss, "index_cpu_to_all_gpus", _GpuLikeIndex, raising=False)
    monkeypatch.setattr("indexer.knn.GPU_MAX_K", 8)
    with open_index(built_index) as index:
        assert index.placement == "gpu"
        for target, hits in expected.items():
            got = index.similar(product_id, 12, {"gender": "Men"}, target=target)  # type: ignore[arg-type]
            assert [h.id for h in got] == [h.id for h in hits] and len(got) == 12


# On a GPU machine with faiss-gpu: `pytest -m gpu` (they skip, saying why, elsewhere).


@pytest.mark.gpu
def test_on_a_real_gpu_searches_equal_the_cpu_exactly(built_index) -> None:
    assert choose_placement("auto", gpu_count()) == "gpu"
    queries = unit_queries(4)
    with open_index(built_index, device="cpu") as cpu:
        expected = {
            "texts": cpu.search_texts(queries, 10, filters={"gender": "Women"}),
            "images": cpu.search_images(queries, 10),
        }
    with open_index(built_index, device="cuda") as gpu:
        assert gpu.placement == "gpu"
        got = {
            "texts": gpu.search_texts(queries, 10, filters={"gender": "Women"}),
            "images": gpu.search_images(queries, 10),
        }
    for name, rows in expected.items():
        assert [[h.id for h in row] for row in got[name]] == [[h.id for h in row] for row in rows]


@pytest.mark.gpu
def test_on_a_real_gpu_similar_and_deep_searches_equal_the_cpu(
    monkeypatch: pytest.MonkeyPatch, built_index, small_catalog, fake_encoder
) -> None:
    """Past the GPU's k limit (lowered here so a small index reaches it) and for `similar`
    (which a GPU index cannot reconstruct for), results are the CPU's."""
    monkeypatch.setattr("indexer.knn.GPU_MAX_K", 8)
    product_id = reference_for(small_catalog, fake_encoder).ids[3]
    queries = unit_queries(3)
    with open_index(built_index, device="cpu") as cpu:
        similar = cpu.similar(product_id, 12, {"gender": "Men"}, target="image")
        deep = cpu.search_images(queries, 12, filters={"gender": "Men"})
    with open_index(built_index, device="cuda") as gpu:
        assert gpu.placement == "gpu"
        got_similar = gpu.similar(product_id, 12, {"gender": "Men"}, target="image")
        got_deep = gpu.search_images(queries, 12, filters={"gender": "Men"})
    assert [h.id for h in got_similar] == [h.id for h in similar]
    assert [[h.id for h in r] for r in got_deep] == [[h.id for h in r] for r in deep]
